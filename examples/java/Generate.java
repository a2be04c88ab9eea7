// Load a checkpoint and generate with the Java binding (org.moesdk).
//
//   java -cp moesdk.jar:. -Djava.library.path=<libdir>/moe/java Generate MODEL_DIR [PROMPT]
//
// With a tokenizer.json in MODEL_DIR the prompt is text and the output is printed as it is produced;
// without one, the prompt is the ids 1 2 3 and the new ids are printed.
import java.util.Arrays;
import org.moesdk.Context;
import org.moesdk.GenerateOptions;
import org.moesdk.Model;
import org.moesdk.ModelInfo;
import org.moesdk.Moe;
import org.moesdk.MoeException;
import org.moesdk.Tokenizer;

public final class Generate {
  public static void main(String[] args) {
    if (args.length < 1) {
      System.err.println("usage: Generate MODEL_DIR [PROMPT]");
      System.exit(2);
    }
    try (Context ctx = new Context(); Model model = new Model(ctx, args[0])) {
      ModelInfo info = model.describe();
      System.out.println(info.getArchitecture() + ", " + info.getNumLayers() + " layers, " + info.getNumExperts()
          + " experts, on " + ctx.backend());

      int[] prompt = {1, 2, 3};
      try (Tokenizer tokenizer = model.tokenizer()) {
        String text = args.length > 1 ? args[1] : "The experts";
        prompt = tokenizer.encode(text, true);
        System.out.print(text);
      } catch (MoeException e) {
        if (e.getStatus() != Moe.ERR_NOT_FOUND) throw e; // no tokenizer.json: keep the ids
      }

      GenerateOptions options = new GenerateOptions();
      options.setMaxNewTokens(16);
      int[] ids = model.generate(prompt, options, (tokenId, text) -> {
        if (text != null) System.out.print(text);
        return false; // true would stop generation
      });
      System.out.println("\ngenerated " + ids.length + " tokens: " + Arrays.toString(ids));
    } catch (MoeException e) {
      System.err.println(e);
      System.exit(1);
    }
  }
}
