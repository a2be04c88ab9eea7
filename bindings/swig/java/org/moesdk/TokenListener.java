package org.moesdk;

/** Sees each token Model.generate produces. */
@FunctionalInterface
public interface TokenListener {
  /**
   * Called after each generated token, on the thread that called generate.
   *
   * @param tokenId the token
   * @param text the text this token completed (UTF-8 can span tokens, so it may be empty), or null
   *     when the model has no tokenizer
   * @return true to stop generation (this token is kept)
   */
  boolean onToken(int tokenId, String text);
}
