// The C# binding (MoeSdk) against the C API's numbers for the same model and input, plus errors,
// token callbacks, disposal and freed memory. Prints "N passed, N failed"; exits 1 on failure.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using MoeSdk;

static class BindingsTest {
  static int passed, failed;

  static void Check(bool ok, string what) {
    if (ok) {
      ++passed;
    } else {
      ++failed;
      Console.Error.WriteLine("FAILED: " + what);
    }
  }

  static void Test(string name, Action body) {
    try {
      body();
    } catch (Exception e) {
      ++failed;
      Console.Error.WriteLine("FAILED " + name + ": " + e);
    }
  }

  // A batch of another composition runs GEMMs of other shapes: the same numbers up to rounding.
  static bool CloseTo(IEnumerable<float> actual, IEnumerable<float> expected) {
    float[] a = actual.ToArray(), e = expected.ToArray();
    return a.Length == e.Length && a.Zip(e, (x, y) => Math.Abs(x - y) <= 1e-5 + 1e-5 * Math.Abs(y)).All(ok => ok);
  }

  static T Expect<T>(Action body) where T : Exception {
    try {
      body();
    } catch (T e) {
      return e;
    }
    throw new Exception("expected " + typeof(T).Name + ", nothing was thrown");
  }

  /// What tests/bindings/reference_logits.c computed through the C API.
  sealed class Reference {
    public long[] Lengths;
    public int[] Ids;
    public float[] Logits;
    public int Vocab;
    public int[] Prompt;
    public int[] Generated;

    public static Reference Read(string path) {
      using (var r = new BinaryReader(File.OpenRead(path))) {  // little-endian, like the file
        var reference = new Reference();
        int sequences = (int)r.ReadInt64(), tokens = (int)r.ReadInt64();
        reference.Vocab = (int)r.ReadInt64();
        reference.Lengths = Enumerable.Range(0, sequences).Select(_ => r.ReadInt64()).ToArray();
        reference.Ids = Ints(r, tokens);
        reference.Logits = Enumerable.Range(0, tokens * reference.Vocab).Select(_ => r.ReadSingle()).ToArray();
        reference.Prompt = Ints(r, (int)r.ReadInt64());
        reference.Generated = Ints(r, (int)r.ReadInt64());
        if (r.BaseStream.Position != r.BaseStream.Length) throw new IOException(path + " has trailing bytes");
        return reference;
      }
    }

    static int[] Ints(BinaryReader r, int n) => Enumerable.Range(0, n).Select(_ => r.ReadInt32()).ToArray();
  }

  static Context NewContext() {
    var o = new ContextOptions();
    o.Backend = "cpu";
    o.AddPluginDir(Environment.GetEnvironmentVariable("MOE_PLUGIN_DIR"));
    o.SearchDefaultDirs = false;
    return new Context(o);
  }

  static GenerateOptions Greedy(int newTokens) {
    var o = new GenerateOptions();
    o.MaxNewTokens = newTokens;
    return o;
  }

  static long ResidentBytes() => long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1]) * 4096;

  // ---- training: what tests/bindings/reference_training.c computed through the C API ----

  const int Vocab = 320, SeqLen = 8;

  /// name -> records of numbers, in file order.
  static Dictionary<string, List<double[]>> ReadTrainingReference(string path) {
    var records = new Dictionary<string, List<double[]>>();
    foreach (string line in File.ReadAllLines(path)) {
      string[] fields = line.Trim().Split(' ');
      if (!records.ContainsKey(fields[0])) records[fields[0]] = new List<double[]>();
      records[fields[0]].Add(fields.Skip(1).Select(f => double.Parse(f, System.Globalization.CultureInfo.InvariantCulture)).ToArray());
    }
    return records;
  }

  /// The reference's data: row r, position t is (r * 37 + t * 11 + 5) mod 320, rows end to end.
  static int[] TrainingIds(int rows) =>
      Enumerable.Range(0, rows * SeqLen).Select(i => (i / SeqLen * 37 + i % SeqLen * 11 + 5) % Vocab).ToArray();

  static Model CreateModel(Context ctx) => Model.Create(ctx, Environment.GetEnvironmentVariable("MOE_TRAINING_CONFIG"), 7);

  static float[] LastTokenLogits(Model model, int[] ids) => model.Forward(ids.Take(SeqLen).ToArray(), new long[] { SeqLen }, true);

  static float[] Floats(double[] values) => values.Select(v => (float)v).ToArray();

  static void TrainingTests(Context ctx, Dictionary<string, List<double[]>> reference) {
    int[] batch = TrainingIds(2);

    Test("created model has the C API's weights", () => {
      using (var model = CreateModel(ctx))
        Check(LastTokenLogits(model, batch).SequenceEqual(Floats(reference["created_logits"][0])), "created logits");
    });

    Test("steps with every option set match the C API", () => {
      var o = new TrainerOptions {
        Lr = 5e-3f, WeightDecay = 0.01f, Beta1 = 0.8f, Beta2 = 0.99f, Eps = 1e-6f, ClipNorm = 0.5f, WarmupSteps = 1,
        TotalSteps = 5, Schedule = Moe.SCHEDULE_COSINE, MinLrRatio = 0.1f, Seed = 3, LabelSmoothing = 0.05f,
        AuxLossCoef = 0.02f, ZLossCoef = 0.001f, SequenceBalanceCoef = 0.001f, Gating = Moe.GATING_GUMBEL,
        GumbelTemperature = 2f, GumbelTemperatureFinal = 0.5f, FreezeLayersBelow = 1, CapacityFactor = 1f
      };
      o.SetFreezeExperts(new[] { 3 });
      o.AddFreezePattern(@"model\.norm\.weight");
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model, o)) {
        foreach (double[] e in reference["full_step"]) {
          TrainStats s = trainer.Step(batch, 2);
          double[] got = { s.Loss, s.AuxLoss, s.GradNorm, s.Lr, s.Step, s.Tokens, s.DroppedFraction };
          Check(got.SequenceEqual(e), "step " + string.Join(" ", got) + " vs " + string.Join(" ", e));
        }
        Check(trainer.Evaluate(batch, 2).Loss == reference["full_evaluate"][0][0], "evaluate loss");
      }
    });

    Test("train over a shuffled dataset matches the C API", () => {
      var o = new TrainerOptions { Lr = 1e-2f, GradAccumulation = 2, Seed = 5, IgnoreIndex = 16 };
      var seen = new List<double[]>();
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model, o)) {
        TrainStats last = trainer.Train(TrainingIds(6), 6, 2, 3, true, s => {
          seen.Add(new double[] { s.Step, s.Loss, s.Lr });
          return false;
        });
        var expected = reference["train_progress"];
        Check(seen.Count == expected.Count && seen.Zip(expected, (a, b) => a.SequenceEqual(b)).All(ok => ok),
              "progress " + string.Join("; ", seen.Select(r => string.Join(" ", r))));
        Check(last != null && last.Step == 3, "last stats " + last);
      }
    });

    Test("LoRA and merge match the C API", () => {
      var o = new TrainerOptions { Lr = 2e-2f, Seed = 9, LoraRank = 4, LoraAlpha = 8f, LoraAttention = true, LoraExperts = true };
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model, o)) {
        foreach (double[] e in reference["lora_step"]) {
          TrainStats s = trainer.Step(batch, 2);
          Check(s.Loss == e[0] && s.GradNorm == e[1], "lora step " + s);
        }
        trainer.MergeLora();
        Check(LastTokenLogits(model, batch).SequenceEqual(Floats(reference["lora_merged_logits"][0])), "merged logits");
      }
    });

    Test("task heads match the C API", () => {
      var o = new TrainerOptions { Lr = 1e-2f, Seed = 4, Task = Moe.TASK_SEQUENCE_CLASSIFICATION, NumLabels = 3 };
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model, o)) {
        foreach (double[] e in reference["classify_step"]) {
          TrainStats s = trainer.Step(batch, 2, new[] { 2, 0 });
          Check(s.Loss == e[0] && s.Accuracy == e[1], "classification step " + s);
        }
      }
      o.Task = Moe.TASK_SPAN_EXTRACTION;
      o.NumLabels = 0;
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model, o)) {
        TrainStats s = trainer.Step(batch, 2, new[] { 1, 3, 4, 6 });
        double[] e = reference["span_step"][0];
        Check(s.Loss == e[0] && s.Accuracy == e[1], "span step " + s);
      }
    });

    Test("callback cancels training", () => {
      var steps = new List<long>();
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model)) {
        var e = Expect<MoeException>(() => trainer.Train(TrainingIds(6), 6, 2, 5, true, s => {
          steps.Add(s.Step);
          return s.Step == 2;
        }));
        Check(e.Status == Moe.ERR_CANCELLED, "status " + e.StatusName);
        Check(e.Message.Contains("cancelled by the progress callback at step 2"), "message: " + e.Message);
        Check(steps.SequenceEqual(new long[] { 1, 2 }), "steps " + string.Join(",", steps));
        TrainStats last = trainer.Train(TrainingIds(6), 6, 2, 3);
        Check(last != null && last.Step == 3, "the steps taken are kept: " + last);
      }
    });

    Test("callback exception stops training and is rethrown", () => {
      int calls = 0;
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model)) {
        var e = Expect<InvalidOperationException>(() => trainer.Train(TrainingIds(4), 4, 2, 4, true, s => {
          ++calls;
          throw new InvalidOperationException("from the callback");
        }));
        Check(e.Message == "from the callback" && calls == 1, "callback exception " + e);
      }
    });

    Test("bad training input", () => {
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model)) {
        int[] bad = TrainingIds(2);
        bad[11] = 5000;
        var e = Expect<MoeException>(() => trainer.Step(bad, 2));
        Check(e.Status == Moe.ERR_INVALID_ARGUMENT && e.Message.Contains("token id 5000 at row 1"), "bad id: " + e.Message);
        e = Expect<MoeException>(() => trainer.Step(new int[0], 0));
        Check(e.Status == Moe.ERR_INVALID_ARGUMENT && e.Message.Contains("the batch is empty"), "empty batch: " + e.Message);
        e = Expect<MoeException>(() => trainer.Step(new[] { 1, 2, 3 }, 2));
        Check(e.Message.Contains("ids holds 3 ids, not 2 sequences of 1"), "ragged: " + e.Message);
        e = Expect<MoeException>(() => trainer.Step(batch, 2, new[] { 1, 2, 3 }));
        Check(e.Message.Contains("labels holds 3 values, not 16"), "labels: " + e.Message);
      }
      using (var model = CreateModel(ctx)) {
        var e = Expect<MoeException>(() => new Trainer(model, new TrainerOptions { Task = Moe.TASK_SEQUENCE_CLASSIFICATION }));
        Check(e.Message.Contains("num_labels >= 2"), "num_labels: " + e.Message);
      }
    });

    Test("save and resume continue exactly", () => {
      var o = new TrainerOptions { Lr = 1e-2f, Seed = 2 };
      string dir = Path.Combine(Path.GetTempPath(), "moesdk-csharp-train-" + Guid.NewGuid());
      var straight = new List<double>();
      var resumed = new List<double>();
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model, o)) {
        trainer.Train(TrainingIds(6), 6, 2, 2);
        trainer.Save(dir);
        trainer.Train(TrainingIds(6), 6, 2, 4, true, s => { straight.Add(s.Loss); return false; });
      }
      using (var model = new Model(ctx, dir, new LoadOptions { Dtype = Moe.LOAD_DTYPE_F32 }))
      using (var trainer = new Trainer(model, o)) {
        trainer.Resume(dir);
        trainer.Train(TrainingIds(6), 6, 2, 4, true, s => { resumed.Add(s.Loss); return false; });
      }
      Check(straight.Count == 2 && straight.SequenceEqual(resumed), "straight " + string.Join(",", straight) + " resumed " + string.Join(",", resumed));
      Directory.Delete(dir, true);
    });

    Test("expert load counts every routed token", () => {
      using (var model = CreateModel(ctx))
      using (var trainer = new Trainer(model)) {
        trainer.Step(batch, 2);
        trainer.Step(batch, 2);
        long[,] load = trainer.ExpertLoad();
        Check(trainer.ExpertLoadLayers().SequenceEqual(new[] { 0, 1 }), "layers " + string.Join(",", trainer.ExpertLoadLayers()));
        Check(load.GetLength(0) == 2 && load.GetLength(1) == 8, "shape " + load.GetLength(0) + "x" + load.GetLength(1));
        for (int r = 0; r < load.GetLength(0); ++r)
          Check(Enumerable.Range(0, load.GetLength(1)).Sum(e => load[r, e]) == 2 * 2 * SeqLen * 2, "row " + r);
      }
    });

    Test("disposed trainer throws; its model outlives a disposed Model object", () => {
      var model = CreateModel(ctx);
      var trainer = new Trainer(model);
      model.Dispose();
      Check(trainer.Step(batch, 2).Step == 1, "the trainer keeps the model's memory");
      trainer.Dispose();
      trainer.Dispose();
      Expect<ObjectDisposedException>(() => trainer.Step(batch, 2));
    });
  }

  static int Main() {
    var reference = Reference.Read(Environment.GetEnvironmentVariable("MOE_BINDINGS_REFERENCE"));
    string mixtral = Path.Combine(Environment.GetEnvironmentVariable("MOE_SOURCE_DIR"), "tests", "reference", "mixtral");
    string withTokenizer = Environment.GetEnvironmentVariable("MOE_TOKENIZER_MODEL");

    using (var ctx = NewContext())
    using (var model = new Model(ctx, mixtral)) {
      Test("same logits as the C API", () => {
        Check(model.Forward(reference.Ids, reference.Lengths).SequenceEqual(reference.Logits),
              "forward differs from the C API");
      });

      Test("last-token logits", () => {
        float[] last = model.Forward(reference.Ids, reference.Lengths, lastOnly: true);
        Check(last.Length == reference.Lengths.Length * reference.Vocab, "lastOnly rows: " + last.Length);
        long end = 0;
        for (int s = 0; s < reference.Lengths.Length; ++s) {
          end += reference.Lengths[s];
          var expected = reference.Logits.Skip((int)(end - 1) * reference.Vocab).Take(reference.Vocab);
          Check(CloseTo(last.Skip(s * reference.Vocab).Take(reference.Vocab), expected), "last row of sequence " + s);
        }
      });

      Test("describe", () => {
        ModelInfo info = model.Describe();
        Check(info.Architecture == "mixtral", "architecture " + info.Architecture);
        Check(info.VocabSize == reference.Vocab && info.NumExperts == 8 && info.ExpertsPerToken == 2, "describe numbers");
        Check(info.Dtype == Moe.DTYPE_F32, "dtype " + info.Dtype);
      });

      Test("greedy generation as the C API", () => {
        int[] ids = model.Generate(reference.Prompt, Greedy(reference.Generated.Length));
        Check(ids.SequenceEqual(reference.Generated), "generated " + string.Join(",", ids));
      });

      Test("callback sees every token", () => {
        var seen = new List<int>();
        var texts = new List<string>();
        int[] ids = model.Generate(reference.Prompt, Greedy(reference.Generated.Length), (token, text) => {
          seen.Add(token);
          texts.Add(text);
          return false;
        });
        Check(seen.SequenceEqual(ids), "callback order");
        Check(texts.All(t => t == null), "text is null without a tokenizer");
      });

      Test("callback stops generation", () => {
        int calls = 0;
        int[] ids = model.Generate(reference.Prompt, Greedy(reference.Generated.Length), (token, text) => ++calls == 3);
        Check(calls == 3 && ids.SequenceEqual(reference.Generated.Take(3)), "stopped after " + calls);
      });

      Test("callback exception stops and is rethrown", () => {
        int calls = 0;
        var e = Expect<InvalidOperationException>(() => model.Generate(reference.Prompt, Greedy(reference.Generated.Length),
            (token, text) => {
              ++calls;
              throw new InvalidOperationException("from the callback");
            }));
        Check(e.Message == "from the callback" && calls == 1, "callback exception " + e);
      });

      Test("batch generation: each row as Generate gives it alone", () => {
        int[][] rows = model.GenerateBatch(reference.Ids, reference.Lengths, Greedy(6));
        Check(rows.Length == reference.Lengths.Length, "rows " + rows.Length);
        int start = 0;
        for (int r = 0; r < rows.Length; ++r) {
          int[] prompt = reference.Ids.Skip(start).Take((int)reference.Lengths[r]).ToArray();
          start += (int)reference.Lengths[r];
          Check(rows[r].SequenceEqual(model.Generate(prompt, Greedy(6))), "row " + r + ": " + string.Join(",", rows[r]));
        }
      });

      Test("batch callback ends a row; its exception is rethrown", () => {
        var rowsSeen = new List<long>();
        int[][] rows = model.GenerateBatch(reference.Ids, reference.Lengths, Greedy(6), (row, token, text) => {
          rowsSeen.Add(row);
          return row == 1 ? Moe.GENERATE_STOP_ROW : Moe.GENERATE_CONTINUE;
        });
        Check(rows[0].Length == 6 && rows[1].Length == 1 && rows[2].Length == 6, "row lengths");
        Check(rowsSeen.Count(r => r == 1) == 1, "row 1 got one token");
        var e = Expect<InvalidOperationException>(() => model.GenerateBatch(reference.Ids, reference.Lengths, Greedy(6),
            (row, token, text) => { throw new InvalidOperationException("from the batch callback"); }));
        Check(e.Message == "from the batch callback", "callback exception " + e);
      });

      Test("missing checkpoint", () => {
        var e = Expect<MoeException>(() => new Model(ctx, "/nonexistent/checkpoint"));
        Check(e.Message.Contains("/nonexistent/checkpoint"), "message: " + e.Message);
        Check(e.Status == Moe.ERR_NOT_FOUND && e.StatusName == "MOE_ERR_NOT_FOUND", "status " + e.StatusName);
      });

      Test("bad token id", () => {
        var e = Expect<MoeException>(() => model.Forward(new[] { 1, 2, 5000 }));
        Check(e.Status == Moe.ERR_INVALID_ARGUMENT, "status " + e.StatusName);
        Check(e.Message.Contains("5000"), "message: " + e.Message);
        Check(e.ToString().Contains("MOE_ERR_INVALID_ARGUMENT"), "ToString: " + e);
      });

      Test("sequence limit", () => {
        var e = Expect<MoeException>(() => model.Generate(reference.Prompt, Greedy(1000)));
        Check(e.Status == Moe.ERR_LIMIT, "status " + e.StatusName);
      });

      Test("lengths must add up", () => {
        var e = Expect<MoeException>(() => model.Forward(reference.Ids, new long[] { 1, 2 }));
        Check(e.Message.Contains("add up to"), "message: " + e.Message);
      });

      Test("plugins", () => {
        Check(ctx.Backend() == "cpu", "backend " + ctx.Backend());
        Check(ctx.Plugins().Count(p => p.Name == "cpu" && p.State == Moe.PLUGIN_STATE_LOADED) == 1, "cpu plugin loaded");
      });

      Test("save and reload", () => {
        string dir = Path.Combine(Path.GetTempPath(), "moesdk-csharp-" + Guid.NewGuid());
        model.Save(dir);
        using (var reloaded = new Model(ctx, dir))
          Check(reloaded.Forward(reference.Ids, reference.Lengths).SequenceEqual(reference.Logits), "reloaded logits");
        Directory.Delete(dir, true);
      });

      Test("disposed objects throw instead of crashing", () => {
        var m = new Model(ctx, mixtral);
        m.Dispose();
        m.Dispose();
        Expect<ObjectDisposedException>(() => m.Describe());
      });

      Test("disposing frees the native memory", () => {
        const int loads = 20;  // each open model holds its weights (~1.4 MB)
        for (int i = 0; i < 3; ++i) new Model(ctx, mixtral).Dispose();
        long start = ResidentBytes();
        for (int i = 0; i < loads; ++i) new Model(ctx, mixtral).Dispose();
        long afterClosed = ResidentBytes();
        var kept = Enumerable.Range(0, loads).Select(_ => new Model(ctx, mixtral)).ToList();
        long afterKept = ResidentBytes();
        kept.ForEach(m => m.Dispose());
        long weights = new FileInfo(Path.Combine(mixtral, "model.safetensors")).Length;
        long grownKept = afterKept - afterClosed, grownClosed = afterClosed - start;
        Check(grownKept > loads * weights / 2, loads + " open models took only " + grownKept + " bytes");
        Check(grownClosed < grownKept / 4, "disposing leaked " + grownClosed + " bytes vs " + grownKept + " kept");
      });

      Test("tokenizer", () => {
        const string text = "Mixture of experts: 混合专家 🙂";
        using (var tok = new Tokenizer(ctx, Path.Combine(withTokenizer, "tokenizer.json")))
        using (var m = new Model(ctx, withTokenizer))
        using (var borrowed = m.Tokenizer()) {
          int[] ids = tok.Encode(text);
          Check(ids.Length > 3 && tok.Decode(ids) == text, "round trip: " + tok.Decode(ids));
          Check(borrowed.Encode(text).SequenceEqual(ids), "the model's tokenizer is the same");
          var pieces = new System.Text.StringBuilder();
          int[] generated = m.Generate(reference.Prompt, Greedy(reference.Generated.Length), (token, piece) => {
            pieces.Append(piece);
            return false;
          });
          Check(generated.SequenceEqual(reference.Generated), "generation with a tokenizer");
          Check(pieces.Length > 0 && borrowed.Decode(generated).StartsWith(pieces.ToString(), StringComparison.Ordinal),
                "streamed text: " + pieces);
        }
      });

      TrainingTests(ctx, ReadTrainingReference(Environment.GetEnvironmentVariable("MOE_TRAINING_REFERENCE")));
    }
    Console.WriteLine(passed + " passed, " + failed + " failed");
    return failed == 0 ? 0 : 1;
  }
}
