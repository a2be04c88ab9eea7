namespace MoeSdk {

/// <summary>
/// Connects a progress delegate (or none) to the library's progress callback (the SWIG director
/// ProgressHandler), and keeps the last step's stats. What the delegate throws must not unwind through
/// the C library: it is kept, training is stopped, and Trainer.Train rethrows it once the library has
/// returned.
/// </summary>
internal sealed class TrainProgressBridge : ProgressHandler {
  private readonly System.Func<TrainStats, bool> onStep;
  private System.Exception error;

  internal TrainProgressBridge(System.Func<TrainStats, bool> onStep) {
    this.onStep = onStep;
  }

  internal TrainStats Last { get; private set; }

  public override bool OnStep(TrainStats stats) {
    Last = stats;
    if (onStep == null) return false;
    try {
      return onStep(stats);
    } catch (System.Exception e) {
      error = e;
      return true;
    }
  }

  internal void RethrowCallbackError() {
    if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
  }
}

}
