package org.moesdk;

/** Sees each optimizer step of Trainer.train. */
@FunctionalInterface
public interface TrainListener {
  /**
   * Called after each optimizer step, on the thread that called train.
   *
   * @param stats what the step reported (the listener may keep it)
   * @return true to stop training: train then throws MoeException with status Moe.ERR_CANCELLED
   */
  boolean onStep(TrainStats stats);
}
