package org.moesdk;

/**
 * Connects a TokenListener to the library's token callback (the SWIG director TokenHandler). What
 * the listener throws must not unwind through the C library: it is kept, generation is stopped, and
 * Model.generate throws it once the library has returned.
 */
final class TokenListenerBridge extends TokenHandler {
  private final TokenListener listener;
  private Throwable error;

  TokenListenerBridge(TokenListener listener) {
    this.listener = listener;
  }

  @Override
  public boolean onToken(int tokenId, String text, boolean hasText) {
    try {
      return listener.onToken(tokenId, hasText ? text : null);
    } catch (Throwable t) {
      error = t;
      return true;
    }
  }

  void rethrowListenerError() {
    if (error instanceof RuntimeException) throw (RuntimeException) error;
    if (error instanceof Error) throw (Error) error;
    if (error != null) throw new RuntimeException("TokenListener failed", error);
  }
}
