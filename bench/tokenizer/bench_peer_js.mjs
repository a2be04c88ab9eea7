// The JS peer's side of the tokenizer benchmark: Hugging Face's @huggingface/tokenizers on node,
// single-threaded encode of every line of the corpus (best of --repeat runs). Prints one JSON object.
// usage: node bench_peer_js.mjs TOKENIZER_JSON CORPUS [REPEAT]   (module from $MOE_DATA_DIR/node_modules)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const [tokenizerPath, corpusPath, repeatArg] = process.argv.slice(2);
const repeat = Number(repeatArg || 3);
const dataDir = process.env.MOE_DATA_DIR || path.join(os.homedir(), ".cache", "moesdk");
const { Tokenizer } = createRequire(import.meta.url)(path.join(dataDir, "node_modules", "@huggingface", "tokenizers"));

let t = process.hrtime.bigint();
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(tokenizerPath, "utf8")), {});
const loadS = Number(process.hrtime.bigint() - t) / 1e9;
const lines = fs.readFileSync(corpusPath, "utf8").split("\n");
if (lines[lines.length - 1] === "") lines.pop();
const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l, "utf8"), 0);
// Wall time and CPU time (user + system of this process: node's JS runs on one thread).
let best = Infinity, bestCpu = Infinity, ids = 0;
for (let r = 0; r < repeat; ++r) {
  t = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  ids = 0;
  for (const line of lines) ids += tokenizer.encode(line, { add_special_tokens: false }).ids.length;
  const used = process.cpuUsage(cpu);
  best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  bestCpu = Math.min(bestCpu, (used.user + used.system) / 1e6);
}
console.log(JSON.stringify({ implementation: "@huggingface/tokenizers (JS) " + process.version, lines: lines.length, bytes,
  ids, load_s: loadS, encode_lines_mb_s: bytes / 1e6 / best, encode_lines_mb_cpu_s: bytes / 1e6 / bestCpu }));
