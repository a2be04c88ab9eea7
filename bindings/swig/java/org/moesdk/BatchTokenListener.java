package org.moesdk;

/** Sees each token of each row Model.generateBatch produces. */
@FunctionalInterface
public interface BatchTokenListener {
  /**
   * Called after each token of a row (rows in order within a step), on the thread that called
   * generateBatch.
   *
   * @param row the row's index, in the order of the prompts
   * @param tokenId the token
   * @param text the text this token completed in its row, or null when the model has no tokenizer
   * @return Moe.GENERATE_CONTINUE, Moe.GENERATE_STOP_ROW (this row ends) or Moe.GENERATE_STOP_ALL
   */
  int onToken(long row, int tokenId, String text);
}
