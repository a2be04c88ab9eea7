// The peer for tests/text: encodes texts with Hugging Face's JS tokenizer (@huggingface/tokenizers,
// installed by scripts/setup under $MOE_DATA_DIR/node_modules).
// usage: node peer_encode.mjs TOKENIZER_JSON TEXTS_JSONL OUT_JSONL
//   TEXTS_JSONL holds one JSON string per line. OUT_JSONL gets, per line, a JSON object: "ids" (no
//   special tokens added), "decoded" (the peer's decode of those ids) and "nfkc" (the text in NFKC,
//   by Node's ICU).
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { createRequire } from "node:module";

const [tokenizerPath, textsPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node peer_encode.mjs TOKENIZER_JSON TEXTS_JSONL OUT_JSONL");
  process.exit(2);
}
const dataDir = process.env.MOE_DATA_DIR || path.join(os.homedir(), ".cache", "moesdk");
const modulePath = path.join(dataDir, "node_modules", "@huggingface", "tokenizers");
if (!fs.existsSync(modulePath)) {
  console.error(`peer_encode: ${modulePath} is missing: run scripts/setup (it installs the JS peer tokenizer)`);
  process.exit(3);
}
const { Tokenizer } = createRequire(import.meta.url)(modulePath);
const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(tokenizerPath, "utf8")), {});
const lines = fs.readFileSync(textsPath, "utf8").split("\n").filter((l) => l.length > 0);
const out = lines.map((line) => {
  const text = JSON.parse(line);
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  const decoded = ids.length ? tokenizer.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "";
  return JSON.stringify({ ids, decoded, nfkc: text.normalize("NFKC") });
});
fs.writeFileSync(outPath, out.join("\n") + "\n");
