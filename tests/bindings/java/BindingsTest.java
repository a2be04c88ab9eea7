// The Java binding (org.moesdk) against the C API's numbers for the same model and input, plus
// errors, token listeners, closing and freed memory. Prints "N passed, N failed"; exits 1 on failure.
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.moesdk.Context;
import org.moesdk.ContextOptions;
import org.moesdk.GenerateOptions;
import org.moesdk.Model;
import org.moesdk.ModelInfo;
import org.moesdk.Moe;
import org.moesdk.MoeException;
import org.moesdk.Tokenizer;

public final class BindingsTest {
  private static int passed;
  private static int failed;

  private static void check(boolean ok, String what) {
    if (ok) {
      ++passed;
    } else {
      ++failed;
      System.err.println("FAILED: " + what);
    }
  }

  // A batch of another composition runs GEMMs of other shapes: the same numbers up to rounding.
  private static boolean closeTo(float[] actual, float[] expected) {
    if (actual.length != expected.length) return false;
    for (int i = 0; i < actual.length; ++i) {
      if (Math.abs(actual[i] - expected[i]) > 1e-5 + 1e-5 * Math.abs(expected[i])) return false;
    }
    return true;
  }

  private interface Body {
    void run() throws Exception;
  }

  private static void test(String name, Body body) {
    try {
      body.run();
    } catch (Throwable t) {
      ++failed;
      System.err.println("FAILED " + name + ": " + t);
      t.printStackTrace();
    }
  }

  private static <T extends Throwable> T expect(Class<T> type, Body body) throws Exception {
    try {
      body.run();
    } catch (Throwable t) {
      if (type.isInstance(t)) return type.cast(t);
      throw new AssertionError("expected " + type.getSimpleName() + ", got " + t, t);
    }
    throw new AssertionError("expected " + type.getSimpleName() + ", nothing was thrown");
  }

  /** What tests/bindings/reference_logits.c computed through the C API. */
  private static final class Reference {
    long[] lengths;
    int[] ids;
    float[] logits;
    int vocab;
    int[] prompt;
    int[] generated;

    static Reference read(Path path) throws IOException {
      ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
      Reference r = new Reference();
      int sequences = (int) b.getLong();
      int tokens = (int) b.getLong();
      r.vocab = (int) b.getLong();
      r.lengths = new long[sequences];
      b.asLongBuffer().get(r.lengths);
      b.position(b.position() + 8 * sequences);
      r.ids = ints(b, tokens);
      r.logits = new float[tokens * r.vocab];
      b.asFloatBuffer().get(r.logits);
      b.position(b.position() + 4 * r.logits.length);
      r.prompt = ints(b, (int) b.getLong());
      r.generated = ints(b, (int) b.getLong());
      if (b.hasRemaining()) throw new IOException(path + " has trailing bytes");
      return r;
    }

    private static int[] ints(ByteBuffer b, int n) {
      int[] v = new int[n];
      b.asIntBuffer().get(v);
      b.position(b.position() + 4 * n);
      return v;
    }
  }

  private static Context newContext() {
    ContextOptions o = new ContextOptions();
    o.setBackend("cpu");
    o.addPluginDir(System.getenv("MOE_PLUGIN_DIR"));
    o.setSearchDefaultDirs(false);
    return new Context(o);
  }

  private static GenerateOptions greedy(int newTokens) {
    GenerateOptions o = new GenerateOptions();
    o.setMaxNewTokens(newTokens);
    return o;
  }

  private static long residentBytes() throws IOException {
    String[] statm = new String(Files.readAllBytes(Paths.get("/proc/self/statm"))).trim().split(" ");
    return Long.parseLong(statm[1]) * 4096;
  }

  public static void main(String[] args) throws Exception {
    Reference ref = Reference.read(Paths.get(System.getenv("MOE_BINDINGS_REFERENCE")));
    String mixtral = System.getenv("MOE_SOURCE_DIR") + "/tests/reference/mixtral";
    String withTokenizer = System.getenv("MOE_TOKENIZER_MODEL");

    try (Context ctx = newContext(); Model model = new Model(ctx, mixtral)) {
      test("same logits as the C API", () -> {
        float[] logits = model.forward(ref.ids, ref.lengths, false);
        check(Arrays.equals(logits, ref.logits), "forward differs from the C API");
      });

      test("last-token logits", () -> {
        float[] last = model.forward(ref.ids, ref.lengths, true);
        check(last.length == ref.lengths.length * ref.vocab, "lastOnly rows: " + last.length);
        long end = 0;
        for (int s = 0; s < ref.lengths.length; ++s) {
          end += ref.lengths[s];
          int from = (int) (end - 1) * ref.vocab;
          check(closeTo(Arrays.copyOfRange(last, s * ref.vocab, (s + 1) * ref.vocab),
                  Arrays.copyOfRange(ref.logits, from, from + ref.vocab)), "last row of sequence " + s);
        }
      });

      test("describe", () -> {
        ModelInfo info = model.describe();
        check(info.getArchitecture().equals("mixtral"), "architecture " + info.getArchitecture());
        check(info.getVocabSize() == ref.vocab && info.getNumExperts() == 8 && info.getExpertsPerToken() == 2,
            "describe numbers");
        check(info.getDtype() == Moe.DTYPE_F32, "dtype " + info.getDtype());
      });

      test("greedy generation as the C API", () -> {
        int[] ids = model.generate(ref.prompt, greedy(ref.generated.length));
        check(Arrays.equals(ids, ref.generated), "generated " + Arrays.toString(ids));
      });

      test("listener sees every token", () -> {
        List<Integer> seen = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        int[] ids = model.generate(ref.prompt, greedy(ref.generated.length), (token, text) -> {
          seen.add(token);
          texts.add(text);
          return false;
        });
        check(Arrays.equals(seen.stream().mapToInt(Integer::intValue).toArray(), ids), "listener order");
        check(texts.stream().allMatch(t -> t == null), "text is null without a tokenizer");
      });

      test("listener stops generation", () -> {
        int[] calls = {0};
        int[] ids = model.generate(ref.prompt, greedy(ref.generated.length), (token, text) -> ++calls[0] == 3);
        check(calls[0] == 3 && Arrays.equals(ids, Arrays.copyOf(ref.generated, 3)), "stopped after " + calls[0]);
      });

      test("listener exception stops and is rethrown", () -> {
        int[] calls = {0};
        IllegalStateException e = expect(IllegalStateException.class, () ->
            model.generate(ref.prompt, greedy(ref.generated.length), (token, text) -> {
              ++calls[0];
              throw new IllegalStateException("from the listener");
            }));
        check(e.getMessage().equals("from the listener") && calls[0] == 1, "listener exception " + e);
      });

      test("missing checkpoint", () -> {
        MoeException e = expect(MoeException.class, () -> new Model(ctx, "/nonexistent/checkpoint"));
        check(e.getMessage().contains("/nonexistent/checkpoint"), "message: " + e.getMessage());
        check(e.getStatus() == Moe.ERR_NOT_FOUND && e.getStatusName().equals("MOE_ERR_NOT_FOUND"),
            "status " + e.getStatusName());
      });

      test("bad token id", () -> {
        MoeException e = expect(MoeException.class, () -> model.forward(new int[] {1, 2, 5000}));
        check(e.getStatus() == Moe.ERR_INVALID_ARGUMENT, "status " + e.getStatusName());
        check(e.getMessage().contains("5000"), "message: " + e.getMessage());
        check(e.toString().contains("MOE_ERR_INVALID_ARGUMENT"), "toString: " + e);
      });

      test("sequence limit", () -> {
        MoeException e = expect(MoeException.class, () -> model.generate(ref.prompt, greedy(1000)));
        check(e.getStatus() == Moe.ERR_LIMIT, "status " + e.getStatusName());
      });

      test("lengths must add up", () -> {
        MoeException e = expect(MoeException.class, () -> model.forward(ref.ids, new long[] {1, 2}, false));
        check(e.getMessage().contains("add up to"), "message: " + e.getMessage());
      });

      test("plugins", () -> {
        check(ctx.backend().equals("cpu"), "backend " + ctx.backend());
        long loadedCpu = ctx.plugins().stream()
            .filter(p -> p.getName().equals("cpu") && p.getState() == Moe.PLUGIN_STATE_LOADED).count();
        check(loadedCpu == 1, "cpu plugin loaded");
      });

      test("save and reload", () -> {
        Path dir = Files.createTempDirectory("moesdk-java");
        model.save(dir.resolve("saved").toString());
        try (Model reloaded = new Model(ctx, dir.resolve("saved").toString())) {
          check(Arrays.equals(reloaded.forward(ref.ids, ref.lengths, false), ref.logits), "reloaded logits");
        }
      });

      test("closed objects throw instead of crashing", () -> {
        Model m = new Model(ctx, mixtral);
        m.close();
        m.close();
        expect(IllegalStateException.class, m::describe);
      });

      test("closing frees the native memory", () -> {
        final int loads = 20; // each open model holds its weights (~1.4 MB)
        for (int i = 0; i < 3; ++i) new Model(ctx, mixtral).close();
        long start = residentBytes();
        for (int i = 0; i < loads; ++i) new Model(ctx, mixtral).close();
        long afterClosed = residentBytes();
        List<Model> kept = new ArrayList<>();
        for (int i = 0; i < loads; ++i) kept.add(new Model(ctx, mixtral));
        long afterKept = residentBytes();
        for (Model m : kept) m.close();
        long weights = Files.size(Paths.get(mixtral, "model.safetensors"));
        long grownKept = afterKept - afterClosed;
        long grownClosed = afterClosed - start;
        check(grownKept > loads * weights / 2, loads + " open models took only " + grownKept + " bytes");
        check(grownClosed < grownKept / 4, "closing leaked " + grownClosed + " bytes vs " + grownKept + " kept");
      });

      test("tokenizer", () -> {
        String text = "Mixture of experts: 混合专家 🙂";
        try (Tokenizer tok = new Tokenizer(ctx, Paths.get(withTokenizer, "tokenizer.json").toString());
            Model m = new Model(ctx, withTokenizer);
            Tokenizer borrowed = m.tokenizer()) {
          int[] ids = tok.encode(text);
          check(ids.length > 3 && tok.decode(ids).equals(text), "round trip: " + tok.decode(ids));
          check(Arrays.equals(borrowed.encode(text), ids), "the model's tokenizer is the same");
          StringBuilder pieces = new StringBuilder();
          int[] generated = m.generate(ref.prompt, greedy(ref.generated.length), (token, piece) -> {
            pieces.append(piece);
            return false;
          });
          check(Arrays.equals(generated, ref.generated), "generation with a tokenizer");
          check(pieces.length() > 0 && borrowed.decode(generated).startsWith(pieces.toString()),
              "streamed text: " + pieces);
        }
      });
    }
    System.out.println(passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
