/* C# specifics of moe.i: namespace MoeSdk (given to swig with -namespace), native library
 * libmoesdk_csharp.so. Methods and properties get .NET names
 * (Model.Forward, GenerateOptions.MaxNewTokens). Arrays are passed as the C# arrays themselves
 * (blittable: pinned for the call, not copied); strings are UTF-8 (Mono's LPStr on Unix). */

%include <std_string.i>

/* Errors: the native code reports them through callbacks registered by the intermediary class, which
 * make them pending; the generated wrappers throw them once the native call has returned. */
%insert(runtime) %{
typedef void (SWIGSTDCALL* MoeSdkErrorCallback)(int status, const char* message);
typedef void (SWIGSTDCALL* MoeSdkDisposedCallback)(const char* message);
static MoeSdkErrorCallback moesdk_error_callback = NULL;
static MoeSdkDisposedCallback moesdk_disposed_callback = NULL;

#ifdef __cplusplus
extern "C"
#endif
SWIGEXPORT void SWIGSTDCALL MoeSdkRegisterErrorCallbacks(MoeSdkErrorCallback error, MoeSdkDisposedCallback disposed) {
  moesdk_error_callback = error;
  moesdk_disposed_callback = disposed;
}
%}

%pragma(csharp) imclasscode=%{
  protected class MoeErrorHelper {
    public delegate void ErrorDelegate(int status, string message);
    public delegate void DisposedDelegate(string message);
    static readonly ErrorDelegate errorDelegate = SetPendingError;
    static readonly DisposedDelegate disposedDelegate = SetPendingDisposed;

    [global::System.Runtime.InteropServices.DllImport("$dllimport", EntryPoint="MoeSdkRegisterErrorCallbacks")]
    static extern void MoeSdkRegisterErrorCallbacks(ErrorDelegate error, DisposedDelegate disposed);

    static void SetPendingError(int status, string message) {
      SWIGPendingException.Set(new MoeException(status, message));
    }

    static void SetPendingDisposed(string message) {
      SWIGPendingException.Set(new global::System.ObjectDisposedException(null, message));
    }

    static MoeErrorHelper() {
      MoeSdkRegisterErrorCallbacks(errorDelegate, disposedDelegate);
    }
  }

  static protected MoeErrorHelper errorHelper = new MoeErrorHelper();
%}

%{
#include <new>
%}

%exception %{
  try {
    $action
  } catch (const moesdk::Error& e) {
    moesdk_error_callback(e.status, e.message.c_str());
    return $null;
  } catch (const std::bad_alloc&) {
    SWIG_CSharpSetPendingException(SWIG_CSharpOutOfMemoryException, "out of memory");
    return $null;
  }
%}

/* A disposed object's proxy holds a null pointer: throw ObjectDisposedException instead. */
%typemap(in, canthrow=1) SWIGTYPE *self %{
  $1 = ($1_ltype)$input;
  if (!$1) {
    moesdk_disposed_callback("the object was disposed");
    return $null;
  }
%}

/* ---- arrays: int[], long[], float[] for the (pointer, length) pairs ---- */
%define MOESDK_CSHARP_ARRAY(CTYPE, CSTYPE)
%typemap(ctype) const CTYPE* IN_ARRAY, CTYPE* OUT_ARRAY "CTYPE*"
%typemap(cstype) const CTYPE* IN_ARRAY, CTYPE* OUT_ARRAY "CSTYPE[]"
%typemap(imtype, inattributes="[global::System.Runtime.InteropServices.In, global::System.Runtime.InteropServices.MarshalAs(global::System.Runtime.InteropServices.UnmanagedType.LPArray)]") const CTYPE* IN_ARRAY "CSTYPE[]"
%typemap(imtype, inattributes="[global::System.Runtime.InteropServices.Out, global::System.Runtime.InteropServices.MarshalAs(global::System.Runtime.InteropServices.UnmanagedType.LPArray)]") CTYPE* OUT_ARRAY "CSTYPE[]"
%typemap(csin) const CTYPE* IN_ARRAY, CTYPE* OUT_ARRAY "$csinput"
%typemap(in) const CTYPE* IN_ARRAY, CTYPE* OUT_ARRAY "$1 = ($1_ltype)$input;"
%enddef

MOESDK_CSHARP_ARRAY(int32_t, int)
MOESDK_CSHARP_ARRAY(int64_t, long)
MOESDK_CSHARP_ARRAY(float, float)

%apply const int32_t* IN_ARRAY {
  const int32_t* ids, const int32_t* prompt, const int32_t* stopIds, const int32_t* labels, const int32_t* experts
};
%apply const int64_t* IN_ARRAY { const int64_t* lengths };
%apply float* OUT_ARRAY { float* logits };
%apply int32_t* OUT_ARRAY { int32_t* out, int32_t* ids, int32_t* layers };
%apply int64_t* OUT_ARRAY { int64_t* counts };

/* ---- the classes' C# faces ---- */
%rename("%(firstuppercase)s", %$isfunction) "";
%rename("%(firstuppercase)s", %$isvariable) "";
%typemap(csclassmodifiers) moesdk::TokenHandler, moesdk::ProgressHandler, moesdk::BatchTokenHandler "internal class"
%csmethodmodifiers moesdk::Model::forwardInto "internal";
%csmethodmodifiers moesdk::Model::generateInto "internal";
%csmethodmodifiers moesdk::Model::generateBatchInto "internal";
%csmethodmodifiers moesdk::Tokenizer::encodeInto "internal";
%csmethodmodifiers moesdk::Tokenizer::decode "internal";
%csmethodmodifiers moesdk::GenerateOptions::setStopIds "internal";
%csmethodmodifiers moesdk::TrainerOptions::setFreezeExperts "internal";
%csmethodmodifiers moesdk::Trainer::stepInto "internal";
%csmethodmodifiers moesdk::Trainer::evaluateInto "internal";
%csmethodmodifiers moesdk::Trainer::trainInto "internal";
%csmethodmodifiers moesdk::Trainer::expertLoadInto "internal";

%typemap(cscode) moesdk::Context %{
  /// <summary>Every plugin library discovery found, loaded or refused (with the reason).</summary>
  public global::System.Collections.Generic.List<PluginInfo> Plugins() {
    var list = new global::System.Collections.Generic.List<PluginInfo>();
    for (int i = 0; i < PluginCount(); ++i) list.Add(Plugin(i));
    return list;
  }
%}

%typemap(cscode) moesdk::Model %{
  /// <summary>
  /// Logits of a batch of sequences, each computed as if alone: ids holds the sequences end to end,
  /// lengths[i] ids each. Returns rows * VocabSize() floats, a row per token (packed like ids) or,
  /// with lastOnly, per sequence.
  /// </summary>
  public float[] Forward(int[] ids, long[] lengths, bool lastOnly = false) {
    if (ids == null || lengths == null) throw new global::System.ArgumentNullException(ids == null ? "ids" : "lengths");
    long rows = lastOnly ? lengths.Length : ids.Length;
    var logits = new float[checked(rows * VocabSize())];
    ForwardInto(ids, ids.Length, lengths, lengths.Length, lastOnly, logits, logits.Length);
    return logits;
  }

  /// <summary>A new model from a Hugging Face config.json (the file) with f32 weights drawn from seed.</summary>
  public static Model Create(Context context, string configPath, long seed) {
    return Create(context, configPath, new CreateOptions { Seed = seed });
  }

  /// <summary>Logits of one sequence: ids.Length * VocabSize() floats.</summary>
  public float[] Forward(int[] ids) {
    if (ids == null) throw new global::System.ArgumentNullException("ids");
    return Forward(ids, new long[] { ids.Length });
  }

  /// <summary>
  /// Generates for several prompts together (ids holds them end to end, lengths[i] ids each): row r's
  /// new ids, sampled with seed + r. onToken(row, tokenId, text) (may be null) returns
  /// Moe.GENERATE_CONTINUE, GENERATE_STOP_ROW or GENERATE_STOP_ALL; an exception it throws ends every row
  /// and is rethrown here.
  /// </summary>
  public int[][] GenerateBatch(int[] ids, long[] lengths, GenerateOptions options,
                               global::System.Func<long, int, string, int> onToken = null) {
    if (ids == null || lengths == null || options == null)
      throw new global::System.ArgumentNullException(ids == null ? "ids" : lengths == null ? "lengths" : "options");
    int rows = lengths.Length, width = global::System.Math.Max(options.MaxNewTokens, 0);
    var output = new int[checked(rows * width)];
    var counts = new long[rows];
    var bridge = onToken == null ? null : new BatchTokenListenerBridge(onToken);
    try {
      GenerateBatchInto(ids, ids.Length, lengths, lengths.Length, options, bridge, output, output.Length, counts, counts.Length);
      if (bridge != null) bridge.RethrowListenerError();
      var result = new int[rows][];
      for (int r = 0; r < rows; ++r) {
        result[r] = new int[counts[r]];
        global::System.Array.Copy(output, r * width, result[r], 0, counts[r]);
      }
      return result;
    } finally {
      if (bridge != null) bridge.Dispose();
    }
  }

  /// <summary>
  /// The new token ids after prompt. onToken (may be null) sees each token id and the text it
  /// completed (null when the model has no tokenizer) and returns true to stop generation. An
  /// exception it throws stops generation and is rethrown here.
  /// </summary>
  public int[] Generate(int[] prompt, GenerateOptions options, global::System.Func<int, string, bool> onToken = null) {
    if (prompt == null || options == null) throw new global::System.ArgumentNullException(prompt == null ? "prompt" : "options");
    var output = new int[options.MaxNewTokens];
    var bridge = onToken == null ? null : new TokenListenerBridge(onToken);
    try {
      long count = GenerateInto(prompt, prompt.Length, options, bridge, output, output.Length);
      if (bridge != null) bridge.RethrowListenerError();
      global::System.Array.Resize(ref output, (int)count);
      return output;
    } finally {
      if (bridge != null) bridge.Dispose();
    }
  }
%}

%typemap(cscode) moesdk::Tokenizer %{
  /// <summary>Token ids of text; addSpecial applies the BOS/EOS post-processing.</summary>
  public int[] Encode(string text, bool addSpecial = false) {
    var ids = new int[checked((int)EncodeInto(text, addSpecial, null, 0))];
    EncodeInto(text, addSpecial, ids, ids.Length);
    return ids;
  }

  /// <summary>The text of token ids; skipSpecial drops special tokens.</summary>
  public string Decode(int[] ids, bool skipSpecial = false) {
    if (ids == null) throw new global::System.ArgumentNullException("ids");
    return Decode(ids, ids.Length, skipSpecial);
  }
%}

%typemap(cscode) moesdk::GenerateOptions %{
  /// <summary>Generation ends after producing one of these ids.</summary>
  public void SetStopIds(int[] stopIds) {
    if (stopIds == null) throw new global::System.ArgumentNullException("stopIds");
    SetStopIds(stopIds, stopIds.Length);
  }
%}

%typemap(cscode) moesdk::TrainerOptions %{
  /// <summary>Routed experts that stay fixed in every MoE layer.</summary>
  public void SetFreezeExperts(int[] experts) {
    if (experts == null) throw new global::System.ArgumentNullException("experts");
    SetFreezeExperts(experts, experts.Length);
  }
%}

%typemap(cscode) moesdk::TrainStats %{
  public override string ToString() => $"TrainStats(step={Step}, loss={Loss}, lr={Lr}, tokens={Tokens})";
%}

%typemap(cscode) moesdk::Trainer %{
  static long RowLength(int[] ids, long rows) => rows > 0 ? ids.Length / rows : 0;

  /// <summary>
  /// One micro-batch of batch sequences (ids holds them end to end, all of one length) with labels as
  /// the task says (null: the causal LM scores each token against the next): causal LM one per token
  /// (IgnoreIndex ignored), sequence classification one class per sequence, span extraction start and
  /// end per sequence.
  /// </summary>
  public TrainStats Step(int[] ids, int batch, int[] labels = null) {
    if (ids == null) throw new global::System.ArgumentNullException("ids");
    labels = labels ?? new int[0];
    return StepInto(ids, ids.Length, labels, labels.Length, batch, RowLength(ids, batch));
  }

  /// <summary>The loss of a batch (as for Step) without gradients or updates.</summary>
  public TrainStats Evaluate(int[] ids, int batch, int[] labels = null) {
    if (ids == null) throw new global::System.ArgumentNullException("ids");
    labels = labels ?? new int[0];
    return EvaluateInto(ids, ids.Length, labels, labels.Length, batch, RowLength(ids, batch));
  }

  /// <summary>
  /// Tokens the routers assigned to each routed expert during training steps, summed since training
  /// began (kept across save and resume): [MoE layer, expert]; ExpertLoadLayers() gives each row's layer.
  /// </summary>
  public long[,] ExpertLoad() {
    int rows = checked((int)MoeLayerCount()), experts = checked((int)ExpertCount());
    var flat = new long[checked(rows * experts)];
    ExpertLoadInto(flat, flat.Length, new int[rows], rows);
    var table = new long[rows, experts];
    global::System.Buffer.BlockCopy(flat, 0, table, 0, flat.Length * sizeof(long));
    return table;
  }

  /// <summary>The model layer of each row of ExpertLoad().</summary>
  public int[] ExpertLoadLayers() {
    int rows = checked((int)MoeLayerCount());
    var layers = new int[rows];
    var flat = new long[checked(rows * (int)ExpertCount())];
    ExpertLoadInto(flat, flat.Length, layers, rows);
    return layers;
  }

  /// <summary>
  /// Trains until the trainer has taken untilStep optimizer steps, on batches of batchSize of the
  /// numSequences sequences in ids (labels as for Step, or null), in order or shuffled per epoch.
  /// onStep (may be null) sees each step; returning true stops training with a MoeException of status
  /// Moe.ERR_CANCELLED (the steps taken are kept). An exception it throws stops training and is rethrown
  /// here. Returns the last step's stats (null when no step was needed).
  /// </summary>
  public TrainStats Train(int[] ids, int numSequences, int batchSize, long untilStep, bool shuffle = true,
                          global::System.Func<TrainStats, bool> onStep = null, int[] labels = null) {
    if (ids == null) throw new global::System.ArgumentNullException("ids");
    labels = labels ?? new int[0];
    var bridge = new TrainProgressBridge(onStep);
    try {
      TrainInto(ids, ids.Length, labels, labels.Length, numSequences, RowLength(ids, numSequences), batchSize, untilStep,
                shuffle, bridge);
      return bridge.Last;
    } catch (MoeException) {
      bridge.RethrowCallbackError();
      throw;
    } finally {
      bridge.Dispose();
    }
  }
%}
