/* Java specifics of moe.i: package org.moesdk (given to swig with -package).
 * Strings cross as UTF-8 bytes (JNI's NewStringUTF/GetStringUTFChars speak "modified UTF-8", which
 * mangles characters outside the BMP); arrays are copied in and out with Get/Set<Type>ArrayRegion
 * (what HotSpot's Get<Type>ArrayElements does anyway), into buffers freed on every return path. */

%pragma(java) jniclasscode=%{
  static {
    System.loadLibrary("moesdk_java");
  }
%}

%{
#include <new>
#include <vector>

static jbyteArray moesdk_java_bytes(JNIEnv* jenv, const std::string& s) {
  jbyteArray bytes = jenv->NewByteArray((jsize)s.size());
  if (bytes) jenv->SetByteArrayRegion(bytes, 0, (jsize)s.size(), (const jbyte*)s.data());
  return bytes;
}

static void moesdk_java_string(JNIEnv* jenv, jbyteArray bytes, std::string& out) {
  jsize n = jenv->GetArrayLength(bytes);
  out.resize((size_t)n);
  if (n) jenv->GetByteArrayRegion(bytes, 0, n, (jbyte*)&out[0]);
}

/* Throws org.moesdk.MoeException(status, message). */
static void moesdk_java_throw(JNIEnv* jenv, const moesdk::Error& e) {
  jclass cls = jenv->FindClass("org/moesdk/MoeException");
  if (!cls) return; /* NoClassDefFoundError is pending */
  jmethodID make = jenv->GetStaticMethodID(cls, "fromNative", "(I[B)Lorg/moesdk/MoeException;");
  if (!make) return;
  jobject error = jenv->CallStaticObjectMethod(cls, make, (jint)e.status, moesdk_java_bytes(jenv, e.message));
  if (error) jenv->Throw((jthrowable)error);
}
%}

%exception %{
  try {
    $action
  } catch (const moesdk::Error& e) {
    moesdk_java_throw(jenv, e);
    return $null;
  } catch (const std::bad_alloc&) {
    SWIG_JavaThrowException(jenv, SWIG_JavaOutOfMemoryError, "out of memory");
    return $null;
  }
%}

/* A closed object's proxy holds pointer 0: throw instead of calling through it. */
%typemap(in) SWIGTYPE *self %{
  $1 = *($&1_ltype)&$input;
  if (!$1) {
    SWIG_JavaThrowException(jenv, SWIG_JavaIllegalStateException, "the object was closed");
    return $null;
  }
%}

/* ---- strings: java.lang.String <-> UTF-8 std::string ---- */
%naturalvar std::string;
%typemap(jni) std::string, const std::string& "jbyteArray"
%typemap(jtype) std::string, const std::string& "byte[]"
%typemap(jstype) std::string, const std::string& "String"
%typemap(javain) std::string, const std::string& "$javainput.getBytes(java.nio.charset.StandardCharsets.UTF_8)"
%typemap(javaout) std::string, const std::string& {
    return new String($jnicall, java.nio.charset.StandardCharsets.UTF_8);
  }
%typemap(in) const std::string& (std::string text) %{
  if (!$input) {
    SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "null string");
    return $null;
  }
  moesdk_java_string(jenv, $input, text);
  $1 = &text;
%}
%typemap(in) std::string %{
  if (!$input) {
    SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "null string");
    return $null;
  }
  moesdk_java_string(jenv, $input, $1);
%}
%typemap(out) std::string %{ $result = moesdk_java_bytes(jenv, $1); %}
%typemap(out) const std::string& %{ $result = moesdk_java_bytes(jenv, *$1); %}
%typemap(directorin, descriptor="Ljava/lang/String;") const std::string& %{
  $input = moesdk_java_bytes(jenv, $1);
  Swig::LocalRefGuard $1_refguard(jenv, $input);
%}
%typemap(javadirectorin) const std::string& "new String($jniinput, java.nio.charset.StandardCharsets.UTF_8)"

/* ---- arrays: (pointer, length) pairs <-> int[], long[], float[] ---- */
%define MOESDK_JAVA_ARRAY(CTYPE, JNITYPE, JNIARRAY, JAVATYPE, JNINAME)
%typemap(jni) (const CTYPE* IN_ARRAY, int64_t LENGTH), (CTYPE* OUT_ARRAY, int64_t LENGTH) "JNIARRAY"
%typemap(jtype) (const CTYPE* IN_ARRAY, int64_t LENGTH), (CTYPE* OUT_ARRAY, int64_t LENGTH) "JAVATYPE[]"
%typemap(jstype) (const CTYPE* IN_ARRAY, int64_t LENGTH), (CTYPE* OUT_ARRAY, int64_t LENGTH) "JAVATYPE[]"
%typemap(javain) (const CTYPE* IN_ARRAY, int64_t LENGTH), (CTYPE* OUT_ARRAY, int64_t LENGTH) "$javainput"
%typemap(in) (const CTYPE* IN_ARRAY, int64_t LENGTH) (std::vector<JNITYPE> copy) %{
  if (!$input) {
    SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "null array");
    return $null;
  }
  $2 = jenv->GetArrayLength($input);
  copy.resize((size_t)$2);
  if ($2) jenv->Get##JNINAME##ArrayRegion($input, 0, (jsize)$2, copy.data());
  $1 = ($1_ltype)copy.data();
%}
%typemap(in) (CTYPE* OUT_ARRAY, int64_t LENGTH) (std::vector<JNITYPE> copy) %{
  if (!$input) {
    SWIG_JavaThrowException(jenv, SWIG_JavaNullPointerException, "null array");
    return $null;
  }
  $2 = jenv->GetArrayLength($input);
  copy.resize((size_t)$2);
  $1 = ($1_ltype)copy.data();
%}
%typemap(argout) (CTYPE* OUT_ARRAY, int64_t LENGTH) %{
  if ($2) jenv->Set##JNINAME##ArrayRegion($input, 0, (jsize)$2, copy$argnum.data());
%}
%enddef

MOESDK_JAVA_ARRAY(int32_t, jint, jintArray, int, Int)
MOESDK_JAVA_ARRAY(int64_t, jlong, jlongArray, long, Long)
MOESDK_JAVA_ARRAY(float, jfloat, jfloatArray, float, Float)

%apply (const int32_t* IN_ARRAY, int64_t LENGTH) {
  (const int32_t* ids, int64_t idCount),
  (const int32_t* labels, int64_t labelCount),
  (const int32_t* experts, int64_t expertCount),
  (const int32_t* prompt, int64_t promptLength),
  (const int32_t* stopIds, int64_t stopIdCount)
};
%apply (const int64_t* IN_ARRAY, int64_t LENGTH) { (const int64_t* lengths, int64_t lengthCount) };
%apply (float* OUT_ARRAY, int64_t LENGTH) { (float* logits, int64_t logitsLength) };
%apply (int32_t* OUT_ARRAY, int64_t LENGTH) {
  (int32_t* out, int64_t outLength),
  (int32_t* ids, int64_t idsLength),
  (int32_t* layers, int64_t layersLength)
};
%apply (int64_t* OUT_ARRAY, int64_t LENGTH) { (int64_t* counts, int64_t countsLength) };

/* ---- the classes' Java faces ---- */
%typemap(javaclassmodifiers) moesdk::TokenHandler, moesdk::ProgressHandler, moesdk::BatchTokenHandler "class"
%javamethodmodifiers moesdk::Model::forwardInto "private";
%javamethodmodifiers moesdk::Model::generateInto "private";
%javamethodmodifiers moesdk::Model::generateBatchInto "private";
%javamethodmodifiers moesdk::Tokenizer::encodeInto "private";
%javamethodmodifiers moesdk::Trainer::stepInto "private";
%javamethodmodifiers moesdk::Trainer::evaluateInto "private";
%javamethodmodifiers moesdk::Trainer::trainInto "private";
%javamethodmodifiers moesdk::Trainer::expertLoadInto "private";
%typemap(javainterfaces) moesdk::Context, moesdk::Model, moesdk::Tokenizer, moesdk::Trainer "AutoCloseable"

%typemap(javacode) moesdk::Context %{
  /** Frees the context now; models and tokenizers made from it keep working. */
  @Override
  public void close() {
    delete();
  }

  /** Every plugin library discovery found, loaded or refused (with the reason). */
  public java.util.List<PluginInfo> plugins() {
    java.util.List<PluginInfo> list = new java.util.ArrayList<>();
    for (int i = 0; i < pluginCount(); ++i) list.add(plugin(i));
    return list;
  }
%}

%typemap(javacode) moesdk::Model %{
  /** Frees the model now (its tokenizer, if taken, keeps the weights until it is closed too). */
  @Override
  public void close() {
    delete();
  }

  /**
   * Logits of a batch of sequences, each computed as if alone: ids holds the sequences end to end,
   * lengths[i] ids each. Returns rows * vocabSize() floats, a row per token (packed like ids) or,
   * with lastOnly, per sequence.
   */
  public float[] forward(int[] ids, long[] lengths, boolean lastOnly) {
    long rows = lastOnly ? lengths.length : ids.length;
    float[] logits = new float[Math.toIntExact(rows * vocabSize())];
    forwardInto(ids, lengths, lastOnly, logits);
    return logits;
  }

  /** A new model from a Hugging Face config.json (the file) with f32 weights drawn from seed. */
  public static Model create(Context context, String configPath, long seed) {
    CreateOptions options = new CreateOptions();
    options.setSeed(seed);
    return create(context, configPath, options);
  }

  /** Logits of one sequence: ids.length * vocabSize() floats. */
  public float[] forward(int[] ids) {
    return forward(ids, new long[] {ids.length}, false);
  }

  /**
   * Generates for several prompts together (ids holds them end to end, lengths[i] ids each): row r's
   * new ids, sampled with seed + r. listener (may be null) sees each row's tokens and returns
   * Moe.GENERATE_CONTINUE, GENERATE_STOP_ROW or GENERATE_STOP_ALL; an exception it throws ends every row
   * and is thrown from here.
   */
  public int[][] generateBatch(int[] ids, long[] lengths, GenerateOptions options, BatchTokenListener listener) {
    int rows = lengths.length, width = options.getMaxNewTokens();
    int[] out = new int[Math.multiplyExact(rows, Math.max(width, 0))];
    long[] counts = new long[rows];
    BatchTokenListenerBridge bridge = listener == null ? null : new BatchTokenListenerBridge(listener);
    try {
      generateBatchInto(ids, lengths, options, bridge, out, counts);
      if (bridge != null) bridge.rethrowListenerError();
      int[][] result = new int[rows][];
      for (int r = 0; r < rows; ++r) result[r] = java.util.Arrays.copyOfRange(out, r * width, r * width + (int) counts[r]);
      return result;
    } finally {
      if (bridge != null) bridge.delete();
    }
  }

  /** The new token ids after prompt. */
  public int[] generate(int[] prompt, GenerateOptions options) {
    return generate(prompt, options, null);
  }

  /**
   * The new token ids after prompt; listener (may be null) sees each token as it is produced and can
   * stop generation. An exception the listener throws stops generation and is thrown from here.
   */
  public int[] generate(int[] prompt, GenerateOptions options, TokenListener listener) {
    int[] out = new int[options.getMaxNewTokens()];
    TokenListenerBridge bridge = listener == null ? null : new TokenListenerBridge(listener);
    try {
      long count = generateInto(prompt, options, bridge, out);
      if (bridge != null) bridge.rethrowListenerError();
      return java.util.Arrays.copyOf(out, (int) count);
    } finally {
      if (bridge != null) bridge.delete();
    }
  }
%}

%typemap(javacode) moesdk::Tokenizer %{
  /** Frees the tokenizer now. */
  @Override
  public void close() {
    delete();
  }

  /** Token ids of text; addSpecial applies the BOS/EOS post-processing. */
  public int[] encode(String text, boolean addSpecial) {
    int[] ids = new int[Math.toIntExact(encodeInto(text, addSpecial, new int[0]))];
    encodeInto(text, addSpecial, ids);
    return ids;
  }

  public int[] encode(String text) {
    return encode(text, false);
  }

  public String decode(int[] ids) {
    return decode(ids, false);
  }
%}

%typemap(javacode) moesdk::Trainer %{
  /** Frees the trainer now (the model it trained stays usable). */
  @Override
  public void close() {
    delete();
  }

  private static long rowLength(int[] ids, long rows) {
    return rows > 0 ? ids.length / rows : 0;
  }

  /**
   * One micro-batch of batch sequences (ids holds them end to end, all of one length), scored against
   * their next tokens (causal LM).
   */
  public TrainStats step(int[] ids, int batch) {
    return step(ids, batch, new int[0]);
  }

  /**
   * One micro-batch with labels as the task says: causal LM one per token (ignoreIndex ignored),
   * sequence classification one class per sequence, span extraction start and end per sequence.
   */
  public TrainStats step(int[] ids, int batch, int[] labels) {
    return stepInto(ids, labels, batch, rowLength(ids, batch));
  }

  /** The loss of a batch without gradients or updates. */
  public TrainStats evaluate(int[] ids, int batch) {
    return evaluate(ids, batch, new int[0]);
  }

  public TrainStats evaluate(int[] ids, int batch, int[] labels) {
    return evaluateInto(ids, labels, batch, rowLength(ids, batch));
  }

  /**
   * Tokens the routers assigned to each routed expert during training steps, summed since training
   * began (kept across save and resume): [MoE layer][expert]; expertLoadLayers() gives each row's layer.
   */
  public long[][] expertLoad() {
    int rows = Math.toIntExact(moeLayerCount()), experts = Math.toIntExact(expertCount());
    long[] flat = new long[rows * experts];
    expertLoadInto(flat, new int[rows]);
    long[][] table = new long[rows][];
    for (int r = 0; r < rows; ++r) table[r] = java.util.Arrays.copyOfRange(flat, r * experts, (r + 1) * experts);
    return table;
  }

  /** The model layer of each row of expertLoad(). */
  public int[] expertLoadLayers() {
    int rows = Math.toIntExact(moeLayerCount());
    int[] layers = new int[rows];
    expertLoadInto(new long[Math.multiplyExact(rows, Math.toIntExact(expertCount()))], layers);
    return layers;
  }

  /** train() without labels (causal LM). */
  public TrainStats train(int[] ids, int numSequences, int batchSize, long untilStep, boolean shuffle,
      TrainListener listener) {
    return train(ids, new int[0], numSequences, batchSize, untilStep, shuffle, listener);
  }

  /**
   * Trains until the trainer has taken untilStep optimizer steps, on batches of batchSize of the
   * numSequences sequences in ids (and their labels, or an empty array), in order or shuffled per epoch.
   * listener (may be null) sees each step; returning true stops training with a MoeException of status
   * Moe.ERR_CANCELLED (the steps taken are kept). An exception the listener throws stops training and
   * is thrown from here. Returns the last step's stats (null when no step was needed).
   */
  public TrainStats train(int[] ids, int[] labels, int numSequences, int batchSize, long untilStep, boolean shuffle,
      TrainListener listener) {
    TrainListenerBridge bridge = new TrainListenerBridge(listener);
    try {
      trainInto(ids, labels, numSequences, rowLength(ids, numSequences), batchSize, untilStep, shuffle, bridge);
      return bridge.last();
    } catch (MoeException e) {
      bridge.rethrowListenerError();
      throw e;
    } finally {
      bridge.delete();
    }
  }
%}

%typemap(javacode) moesdk::TrainStats %{
  @Override
  public String toString() {
    return "TrainStats(step=" + getStep() + ", loss=" + getLoss() + ", lr=" + getLr() + ", tokens=" + getTokens() + ")";
  }
%}
