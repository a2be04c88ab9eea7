package org.moesdk;

import java.nio.charset.StandardCharsets;

/** A call into the MoE SDK failed: the library's status (Moe.ERR_*) and its message. */
public class MoeException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int status;

  public MoeException(int status, String message) {
    super(message);
    this.status = status;
  }

  /** The status code, one of Moe.ERR_*. */
  public int getStatus() {
    return status;
  }

  /** The status's fixed name, e.g. "MOE_ERR_NOT_FOUND". */
  public String getStatusName() {
    return Moe.statusString(status);
  }

  @Override
  public String toString() {
    return getClass().getName() + " [" + getStatusName() + "]: " + getMessage();
  }

  // Called by the native code, which has the message as UTF-8 bytes.
  static MoeException fromNative(int status, byte[] message) {
    return new MoeException(status, new String(message, StandardCharsets.UTF_8));
  }
}
