namespace MoeSdk {

/// <summary>A call into the MoE SDK failed: the library's status (Moe.ERR_*) and its message.</summary>
public class MoeException : System.Exception {
  public MoeException(int status, string message) : base(message) {
    Status = status;
  }

  /// <summary>The status code, one of Moe.ERR_*.</summary>
  public int Status { get; }

  /// <summary>The status's fixed name, e.g. "MOE_ERR_NOT_FOUND".</summary>
  public string StatusName => Moe.StatusString(Status);

  public override string ToString() => GetType().FullName + " [" + StatusName + "]: " + Message;
}

}
