package org.moesdk;

/**
 * Connects a TrainListener (or none) to the library's progress callback (the SWIG director
 * ProgressHandler), and keeps the last step's stats. What the listener throws must not unwind through
 * the C library: it is kept, training is stopped, and Trainer.train throws it once the library has
 * returned.
 */
final class TrainListenerBridge extends ProgressHandler {
  private final TrainListener listener;
  private TrainStats last;
  private Throwable error;

  TrainListenerBridge(TrainListener listener) {
    this.listener = listener;
  }

  @Override
  public boolean onStep(TrainStats stats) {
    last = stats;
    if (listener == null) return false;
    try {
      return listener.onStep(stats);
    } catch (Throwable t) {
      error = t;
      return true;
    }
  }

  TrainStats last() {
    return last;
  }

  void rethrowListenerError() {
    if (error instanceof RuntimeException) throw (RuntimeException) error;
    if (error instanceof Error) throw (Error) error;
    if (error != null) throw new RuntimeException("TrainListener failed", error);
  }
}
