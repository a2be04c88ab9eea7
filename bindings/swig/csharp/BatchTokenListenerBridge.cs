namespace MoeSdk {

/// <summary>
/// Connects a batch token delegate to the library's batch token callback (the SWIG director
/// BatchTokenHandler). What the delegate throws must not unwind through the C library: it is kept, every
/// row is ended, and Model.GenerateBatch rethrows it once the library has returned.
/// </summary>
internal sealed class BatchTokenListenerBridge : BatchTokenHandler {
  private readonly System.Func<long, int, string, int> onToken;
  private System.Exception error;

  internal BatchTokenListenerBridge(System.Func<long, int, string, int> onToken) {
    this.onToken = onToken;
  }

  public override int OnToken(long row, int tokenId, string text, bool hasText) {
    try {
      return onToken(row, tokenId, hasText ? text : null);
    } catch (System.Exception e) {
      error = e;
      return Moe.GENERATE_STOP_ALL;
    }
  }

  internal void RethrowListenerError() {
    if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
  }
}

}
