package org.moesdk;

/**
 * Connects a BatchTokenListener to the library's batch token callback (the SWIG director
 * BatchTokenHandler). What the listener throws must not unwind through the C library: it is kept, every
 * row is ended, and Model.generateBatch throws it once the library has returned.
 */
final class BatchTokenListenerBridge extends BatchTokenHandler {
  private final BatchTokenListener listener;
  private Throwable error;

  BatchTokenListenerBridge(BatchTokenListener listener) {
    this.listener = listener;
  }

  @Override
  public int onToken(long row, int tokenId, String text, boolean hasText) {
    try {
      return listener.onToken(row, tokenId, hasText ? text : null);
    } catch (Throwable t) {
      error = t;
      return Moe.GENERATE_STOP_ALL;
    }
  }

  void rethrowListenerError() {
    if (error instanceof RuntimeException) throw (RuntimeException) error;
    if (error instanceof Error) throw (Error) error;
    if (error != null) throw new RuntimeException("BatchTokenListener failed", error);
  }
}
