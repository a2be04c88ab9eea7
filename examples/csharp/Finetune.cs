// Fine-tune a model with LoRA through the C# binding (MoeSdk), save it, and generate from it.
//
//   MONO_PATH=<libdir>/moe/csharp mono Finetune.exe MODEL_DIR OUT_DIR [THREADS]
//
// The task is small on purpose: a cycle of eight tokens (10 20 ... 80, then 10 again) that the model
// learns in a few dozen steps, so that generating after "10 20 30" continues the cycle. The adapters
// are merged into the weights before saving: OUT_DIR is a plain checkpoint. THREADS: CPU threads
// (default one per core; a model this small trains as fast on one).
using System;
using System.Linq;
using MoeSdk;

static class Finetune {
  static readonly int[] Cycle = { 10, 20, 30, 40, 50, 60, 70, 80 };
  const int SeqLen = 12, Steps = 30;

  static int Main(string[] args) {
    if (args.Length < 2) {
      Console.Error.WriteLine("usage: Finetune.exe MODEL_DIR OUT_DIR [THREADS]");
      return 2;
    }
    // The cycle read from each of its positions: 8 sequences of SeqLen ids, end to end.
    int[] data = Enumerable.Range(0, Cycle.Length * SeqLen).Select(i => Cycle[(i / SeqLen + i % SeqLen) % Cycle.Length]).ToArray();
    var contextOptions = new ContextOptions();
    if (args.Length > 2) contextOptions.NumThreads = int.Parse(args[2]);
    var options = new TrainerOptions {
      Lr = 5e-2f, LoraRank = 8, LoraExperts = true, Seed = 1,
      Schedule = Moe.SCHEDULE_COSINE, WarmupSteps = 4, TotalSteps = Steps
    };
    try {
      using (var ctx = new Context(contextOptions)) {
        // The weights LoRA merges into must be f32.
        using (var model = new Model(ctx, args[0], new LoadOptions { Dtype = Moe.LOAD_DTYPE_F32 }))
        using (var trainer = new Trainer(model, options)) {
          double before = trainer.Evaluate(data, Cycle.Length).Loss;
          trainer.Train(data, Cycle.Length, 4, Steps, true, stats => {
            if (stats.Step % 10 == 0) Console.WriteLine($"step {stats.Step,3}  loss {stats.Loss:F3}");
            return false;  // true would stop training (MoeException, Moe.ERR_CANCELLED)
          });
          Console.WriteLine($"loss {before:F3} -> {trainer.Evaluate(data, Cycle.Length).Loss:F3}");
          trainer.MergeLora();
          model.Save(args[1]);
        }
        using (var tuned = new Model(ctx, args[1])) {
          int[] ids = tuned.Generate(Cycle.Take(3).ToArray(), new GenerateOptions { MaxNewTokens = 8 });
          Console.WriteLine($"generated {ids.Length} tokens after 10 20 30: {string.Join(" ", ids)}");
        }
      }
      return 0;
    } catch (MoeException e) {
      Console.Error.WriteLine(e);
      return 1;
    }
  }
}
