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
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.moesdk.Context;
import org.moesdk.ContextOptions;
import org.moesdk.GenerateOptions;
import org.moesdk.LoadOptions;
import org.moesdk.Model;
import org.moesdk.ModelInfo;
import org.moesdk.Moe;
import org.moesdk.MoeException;
import org.moesdk.Tokenizer;
import org.moesdk.TrainStats;
import org.moesdk.Trainer;
import org.moesdk.TrainerOptions;

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

  // ---- training: what tests/bindings/reference_training.c computed through the C API ----

  private static final int VOCAB = 320;
  private static final int SEQ_LEN = 8;

  /** name -> records of numbers, in file order. */
  private static Map<String, List<double[]>> readTrainingReference(Path path) throws IOException {
    Map<String, List<double[]>> records = new HashMap<>();
    for (String line : Files.readAllLines(path)) {
      String[] fields = line.trim().split(" ");
      double[] values = new double[fields.length - 1];
      for (int i = 1; i < fields.length; ++i) values[i - 1] = Double.parseDouble(fields[i]);
      records.computeIfAbsent(fields[0], k -> new ArrayList<>()).add(values);
    }
    return records;
  }

  /** The reference's data: row r, position t is (r * 37 + t * 11 + 5) mod 320, rows end to end. */
  private static int[] trainingIds(int rows) {
    int[] ids = new int[rows * SEQ_LEN];
    for (int r = 0; r < rows; ++r)
      for (int t = 0; t < SEQ_LEN; ++t) ids[r * SEQ_LEN + t] = (r * 37 + t * 11 + 5) % VOCAB;
    return ids;
  }

  private static Model createModel(Context ctx) {
    return Model.create(ctx, System.getenv("MOE_TRAINING_CONFIG"), 7);
  }

  private static float[] lastTokenLogits(Model model, int[] ids) {
    return model.forward(Arrays.copyOf(ids, SEQ_LEN), new long[] {SEQ_LEN}, true);
  }

  private static float[] floats(double[] values) {
    float[] f = new float[values.length];
    for (int i = 0; i < values.length; ++i) f[i] = (float) values[i];
    return f;
  }

  private static void trainingTests(Context ctx, Map<String, List<double[]>> ref) {
    int[] batch = trainingIds(2);

    test("created model has the C API's weights", () -> {
      try (Model model = createModel(ctx)) {
        check(Arrays.equals(lastTokenLogits(model, batch), floats(ref.get("created_logits").get(0))), "created logits");
      }
    });

    test("steps with every option set match the C API", () -> {
      TrainerOptions o = new TrainerOptions();
      o.setLr(5e-3f);
      o.setWeightDecay(0.01f);
      o.setBeta1(0.8f);
      o.setBeta2(0.99f);
      o.setEps(1e-6f);
      o.setClipNorm(0.5f);
      o.setWarmupSteps(1);
      o.setTotalSteps(5);
      o.setSchedule(Moe.SCHEDULE_COSINE);
      o.setMinLrRatio(0.1f);
      o.setSeed(3);
      o.setLabelSmoothing(0.05f);
      o.setAuxLossCoef(0.02f);
      o.setZLossCoef(0.001f);
      o.setSequenceBalanceCoef(0.001f);
      o.setGating(Moe.GATING_GUMBEL);
      o.setGumbelTemperature(2f);
      o.setGumbelTemperatureFinal(0.5f);
      o.setFreezeLayersBelow(1);
      o.setFreezeExperts(new int[] {3});
      o.addFreezePattern("model\\.norm\\.weight");
      o.setCapacityFactor(1f);
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model, o)) {
        for (double[] e : ref.get("full_step")) {
          TrainStats s = trainer.step(batch, 2);
          double[] got = {s.getLoss(), s.getAuxLoss(), s.getGradNorm(), s.getLr(), s.getStep(), s.getTokens(),
              s.getDroppedFraction()};
          check(Arrays.equals(got, e), "step " + Arrays.toString(got) + " vs " + Arrays.toString(e));
        }
        check(trainer.evaluate(batch, 2).getLoss() == ref.get("full_evaluate").get(0)[0], "evaluate loss");
      }
    });

    test("train over a shuffled dataset matches the C API", () -> {
      TrainerOptions o = new TrainerOptions();
      o.setLr(1e-2f);
      o.setGradAccumulation(2);
      o.setSeed(5);
      o.setIgnoreIndex(16);
      List<double[]> seen = new ArrayList<>();
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model, o)) {
        TrainStats last = trainer.train(trainingIds(6), 6, 2, 3, true, s -> {
          seen.add(new double[] {s.getStep(), s.getLoss(), s.getLr()});
          return false;
        });
        List<double[]> expected = ref.get("train_progress");
        check(seen.size() == expected.size(), "progress calls " + seen.size());
        for (int i = 0; i < Math.min(seen.size(), expected.size()); ++i)
          check(Arrays.equals(seen.get(i), expected.get(i)), "progress " + i + ": " + Arrays.toString(seen.get(i)));
        check(last != null && last.getStep() == 3, "last stats " + last);
      }
    });

    test("LoRA and merge match the C API", () -> {
      TrainerOptions o = new TrainerOptions();
      o.setLr(2e-2f);
      o.setSeed(9);
      o.setLoraRank(4);
      o.setLoraAlpha(8f);
      o.setLoraAttention(true);
      o.setLoraExperts(true);
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model, o)) {
        for (double[] e : ref.get("lora_step")) {
          TrainStats s = trainer.step(batch, 2);
          check(s.getLoss() == e[0] && s.getGradNorm() == e[1], "lora step " + s);
        }
        trainer.mergeLora();
        check(Arrays.equals(lastTokenLogits(model, batch), floats(ref.get("lora_merged_logits").get(0))), "merged logits");
      }
    });

    test("task heads match the C API", () -> {
      TrainerOptions o = new TrainerOptions();
      o.setLr(1e-2f);
      o.setSeed(4);
      o.setTask(Moe.TASK_SEQUENCE_CLASSIFICATION);
      o.setNumLabels(3);
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model, o)) {
        for (double[] e : ref.get("classify_step")) {
          TrainStats s = trainer.step(batch, 2, new int[] {2, 0});
          check(s.getLoss() == e[0] && s.getAccuracy() == e[1], "classification step " + s);
        }
      }
      o.setTask(Moe.TASK_SPAN_EXTRACTION);
      o.setNumLabels(0);
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model, o)) {
        TrainStats s = trainer.step(batch, 2, new int[] {1, 3, 4, 6});
        double[] e = ref.get("span_step").get(0);
        check(s.getLoss() == e[0] && s.getAccuracy() == e[1], "span step " + s);
      }
    });

    test("listener cancels training", () -> {
      List<Long> steps = new ArrayList<>();
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model)) {
        MoeException e = expect(MoeException.class, () -> trainer.train(trainingIds(6), 6, 2, 5, true, s -> {
          steps.add(s.getStep());
          return s.getStep() == 2;
        }));
        check(e.getStatus() == Moe.ERR_CANCELLED, "status " + e.getStatusName());
        check(e.getMessage().contains("cancelled by the progress callback at step 2"), "message: " + e.getMessage());
        check(steps.equals(Arrays.asList(1L, 2L)), "steps " + steps);
        TrainStats last = trainer.train(trainingIds(6), 6, 2, 3, true, null);
        check(last != null && last.getStep() == 3, "the steps taken are kept: " + last);
      }
    });

    test("listener exception stops training and is rethrown", () -> {
      int[] calls = {0};
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model)) {
        IllegalStateException e = expect(IllegalStateException.class, () -> trainer.train(trainingIds(4), 4, 2, 4, true, s -> {
          ++calls[0];
          throw new IllegalStateException("from the listener");
        }));
        check(e.getMessage().equals("from the listener") && calls[0] == 1, "listener exception " + e);
      }
    });

    test("bad training input", () -> {
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model)) {
        int[] bad = trainingIds(2);
        bad[11] = 5000;
        MoeException e = expect(MoeException.class, () -> trainer.step(bad, 2));
        check(e.getStatus() == Moe.ERR_INVALID_ARGUMENT && e.getMessage().contains("token id 5000 at row 1"),
            "bad id: " + e.getMessage());
        e = expect(MoeException.class, () -> trainer.step(new int[0], 0));
        check(e.getStatus() == Moe.ERR_INVALID_ARGUMENT && e.getMessage().contains("the batch is empty"),
            "empty batch: " + e.getMessage());
        e = expect(MoeException.class, () -> trainer.step(new int[] {1, 2, 3}, 2));
        check(e.getMessage().contains("ids holds 3 ids, not 2 sequences of 1"), "ragged: " + e.getMessage());
        e = expect(MoeException.class, () -> trainer.step(batch, 2, new int[] {1, 2, 3}));
        check(e.getMessage().contains("labels holds 3 values, not 16"), "labels: " + e.getMessage());
      }
      TrainerOptions o = new TrainerOptions();
      o.setTask(Moe.TASK_SEQUENCE_CLASSIFICATION);
      try (Model model = createModel(ctx)) {
        MoeException e = expect(MoeException.class, () -> new Trainer(model, o));
        check(e.getMessage().contains("num_labels >= 2"), "num_labels: " + e.getMessage());
      }
    });

    test("save and resume continue exactly", () -> {
      TrainerOptions o = new TrainerOptions();
      o.setLr(1e-2f);
      o.setSeed(2);
      Path dir = Files.createTempDirectory("moesdk-java-train").resolve("checkpoint");
      List<Double> straight = new ArrayList<>(), resumed = new ArrayList<>();
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model, o)) {
        trainer.train(trainingIds(6), 6, 2, 2, true, null);
        trainer.save(dir.toString());
        trainer.train(trainingIds(6), 6, 2, 4, true, s -> !straight.add(s.getLoss()));
      }
      LoadOptions f32 = new LoadOptions();
      f32.setDtype(Moe.LOAD_DTYPE_F32);
      try (Model model = new Model(ctx, dir.toString(), f32); Trainer trainer = new Trainer(model, o)) {
        trainer.resume(dir.toString());
        trainer.train(trainingIds(6), 6, 2, 4, true, s -> !resumed.add(s.getLoss()));
      }
      check(straight.size() == 2 && straight.equals(resumed), "straight " + straight + " resumed " + resumed);
    });

    test("expert load counts every routed token", () -> {
      try (Model model = createModel(ctx); Trainer trainer = new Trainer(model)) {
        trainer.step(batch, 2);
        trainer.step(batch, 2);
        long[][] load = trainer.expertLoad();
        check(Arrays.equals(trainer.expertLoadLayers(), new int[] {0, 1}), "layers " + Arrays.toString(trainer.expertLoadLayers()));
        check(load.length == 2 && load[0].length == 8, "shape " + load.length);
        for (long[] row : load) check(Arrays.stream(row).sum() == 2 * 2 * SEQ_LEN * 2, "row " + Arrays.toString(row));
      }
    });

    test("closed trainer throws; its model outlives a closed Model object", () -> {
      Model model = createModel(ctx);
      Trainer trainer = new Trainer(model);
      model.close();
      check(trainer.step(batch, 2).getStep() == 1, "the trainer keeps the model's memory");
      trainer.close();
      trainer.close();
      expect(IllegalStateException.class, () -> trainer.step(batch, 2));
    });
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

      test("batch generation: each row as generate gives it alone", () -> {
        int[][] rows = model.generateBatch(ref.ids, ref.lengths, greedy(6), null);
        check(rows.length == ref.lengths.length, "rows " + rows.length);
        int start = 0;
        for (int r = 0; r < rows.length; ++r) {
          int[] prompt = Arrays.copyOfRange(ref.ids, start, start + (int) ref.lengths[r]);
          start += (int) ref.lengths[r];
          check(Arrays.equals(rows[r], model.generate(prompt, greedy(6))), "row " + r + ": " + Arrays.toString(rows[r]));
        }
      });

      test("batch listener ends a row; its exception is rethrown", () -> {
        List<Long> rowsSeen = new ArrayList<>();
        int[][] rows = model.generateBatch(ref.ids, ref.lengths, greedy(6), (row, token, text) -> {
          rowsSeen.add(row);
          return row == 1 ? Moe.GENERATE_STOP_ROW : Moe.GENERATE_CONTINUE;
        });
        check(rows[0].length == 6 && rows[1].length == 1 && rows[2].length == 6, "row lengths");
        check(rowsSeen.stream().filter(r -> r == 1).count() == 1, "row 1 got one token");
        IllegalStateException e = expect(IllegalStateException.class, () ->
            model.generateBatch(ref.ids, ref.lengths, greedy(6), (row, token, text) -> {
              throw new IllegalStateException("from the batch listener");
            }));
        check(e.getMessage().equals("from the batch listener"), "listener exception " + e);
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

      trainingTests(ctx, readTrainingReference(Paths.get(System.getenv("MOE_TRAINING_REFERENCE"))));
    }
    System.out.println(passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
