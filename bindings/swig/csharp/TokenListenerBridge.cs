namespace MoeSdk {

/// <summary>
/// Connects a token delegate to the library's token callback (the SWIG director TokenHandler). What the
/// delegate throws must not unwind through the C library: it is kept, generation is stopped, and
/// Model.Generate rethrows it once the library has returned.
/// </summary>
internal sealed class TokenListenerBridge : TokenHandler {
  private readonly System.Func<int, string, bool> onToken;
  private System.Exception error;

  internal TokenListenerBridge(System.Func<int, string, bool> onToken) {
    this.onToken = onToken;
  }

  public override bool OnToken(int tokenId, string text, bool hasText) {
    try {
      return onToken(tokenId, hasText ? text : null);
    } catch (System.Exception e) {
      error = e;
      return true;
    }
  }

  internal void RethrowListenerError() {
    if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
  }
}

}
