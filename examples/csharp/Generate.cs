// Load a checkpoint and generate with the C# binding (MoeSdk).
//
//   MONO_PATH=<libdir>/moe/csharp mono Generate.exe MODEL_DIR [PROMPT]
//
// With a tokenizer.json in MODEL_DIR the prompt is text and the output is printed as it is produced;
// without one, the prompt is the ids 1 2 3 and the new ids are printed.
using System;
using MoeSdk;

static class Generate {
  static int Main(string[] args) {
    if (args.Length < 1) {
      Console.Error.WriteLine("usage: Generate.exe MODEL_DIR [PROMPT]");
      return 2;
    }
    try {
      using (var ctx = new Context())
      using (var model = new Model(ctx, args[0])) {
        ModelInfo info = model.Describe();
        Console.WriteLine($"{info.Architecture}, {info.NumLayers} layers, {info.NumExperts} experts, on {ctx.Backend()}");

        int[] prompt = { 1, 2, 3 };
        try {
          using (var tokenizer = model.Tokenizer()) {
            string text = args.Length > 1 ? args[1] : "The experts";
            prompt = tokenizer.Encode(text, addSpecial: true);
            Console.Write(text);
          }
        } catch (MoeException e) when (e.Status == Moe.ERR_NOT_FOUND) {
          // no tokenizer.json: keep the ids
        }

        var options = new GenerateOptions { MaxNewTokens = 16 };
        int[] ids = model.Generate(prompt, options, (tokenId, text) => {
          if (text != null) Console.Write(text);
          return false;  // true would stop generation
        });
        Console.WriteLine($"\ngenerated {ids.Length} tokens: {string.Join(" ", ids)}");
      }
      return 0;
    } catch (MoeException e) {
      Console.Error.WriteLine(e);
      return 1;
    }
  }
}
