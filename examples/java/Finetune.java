// Fine-tune a model with LoRA through the Java binding (org.moesdk), save it, and generate from it.
//
//   java -cp moesdk.jar:. -Djava.library.path=<libdir>/moe/java Finetune MODEL_DIR OUT_DIR [THREADS]
//
// The task is small on purpose: a cycle of eight tokens (10 20 ... 80, then 10 again) that the model
// learns in a few dozen steps, so that generating after "10 20 30" continues the cycle. The adapters
// are merged into the weights before saving: OUT_DIR is a plain checkpoint. THREADS: CPU threads
// (default one per core; a model this small trains as fast on one).
import java.util.Arrays;
import org.moesdk.Context;
import org.moesdk.ContextOptions;
import org.moesdk.GenerateOptions;
import org.moesdk.LoadOptions;
import org.moesdk.Model;
import org.moesdk.Moe;
import org.moesdk.MoeException;
import org.moesdk.Trainer;
import org.moesdk.TrainerOptions;

public final class Finetune {
  static final int[] CYCLE = {10, 20, 30, 40, 50, 60, 70, 80};
  static final int SEQ_LEN = 12;
  static final int STEPS = 30;

  public static void main(String[] args) {
    if (args.length < 2) {
      System.err.println("usage: Finetune MODEL_DIR OUT_DIR [THREADS]");
      System.exit(2);
    }
    // The cycle read from each of its positions: 8 sequences of SEQ_LEN ids, end to end.
    int[] data = new int[CYCLE.length * SEQ_LEN];
    for (int r = 0; r < CYCLE.length; ++r)
      for (int t = 0; t < SEQ_LEN; ++t) data[r * SEQ_LEN + t] = CYCLE[(r + t) % CYCLE.length];

    ContextOptions contextOptions = new ContextOptions();
    if (args.length > 2) contextOptions.setNumThreads(Integer.parseInt(args[2]));
    LoadOptions f32 = new LoadOptions();
    f32.setDtype(Moe.LOAD_DTYPE_F32); // the weights LoRA merges into must be f32

    TrainerOptions options = new TrainerOptions();
    options.setLr(5e-2f);
    options.setLoraRank(8);
    options.setLoraExperts(true);
    options.setSeed(1);
    options.setSchedule(Moe.SCHEDULE_COSINE);
    options.setWarmupSteps(4);
    options.setTotalSteps(STEPS);

    try (Context ctx = new Context(contextOptions)) {
      try (Model model = new Model(ctx, args[0], f32); Trainer trainer = new Trainer(model, options)) {
        double before = trainer.evaluate(data, CYCLE.length).getLoss();
        trainer.train(data, CYCLE.length, 4, STEPS, true, stats -> {
          if (stats.getStep() % 10 == 0) System.out.printf("step %3d  loss %.3f%n", stats.getStep(), stats.getLoss());
          return false; // true would stop training (MoeException, Moe.ERR_CANCELLED)
        });
        System.out.printf("loss %.3f -> %.3f%n", before, trainer.evaluate(data, CYCLE.length).getLoss());
        trainer.mergeLora();
        model.save(args[1]);
      }
      try (Model tuned = new Model(ctx, args[1])) {
        GenerateOptions g = new GenerateOptions();
        g.setMaxNewTokens(8);
        int[] ids = tuned.generate(Arrays.copyOf(CYCLE, 3), g);
        System.out.println("generated " + ids.length + " tokens after 10 20 30: " + Arrays.toString(ids));
      }
    } catch (MoeException e) {
      System.err.println(e);
      System.exit(1);
    }
  }
}
