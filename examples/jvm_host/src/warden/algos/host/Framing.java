package warden.algos.host;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/** Serve-mode framing: a 4-byte big-endian unsigned length, then that many bytes. */
public final class Framing {
  private Framing() {}

  public static void writeFrame(OutputStream out, byte[] body) throws IOException {
    int n = body.length;
    out.write(new byte[] {(byte) (n >>> 24), (byte) (n >>> 16), (byte) (n >>> 8), (byte) n});
    out.write(body);
    out.flush();
  }

  /** The next frame body; EOFException when the stream ends, even between frames. */
  public static byte[] readFrame(InputStream in) throws IOException {
    byte[] header = in.readNBytes(4);
    if (header.length < 4) {
      throw new EOFException("stream ended after " + header.length + " of 4 header bytes");
    }
    long size =
        ((header[0] & 0xFFL) << 24)
            | ((header[1] & 0xFFL) << 16)
            | ((header[2] & 0xFFL) << 8)
            | (header[3] & 0xFFL);
    if (size > Integer.MAX_VALUE - 8) {
      throw new IOException("response frame of " + size + " bytes is larger than a Java array");
    }
    byte[] body = in.readNBytes((int) size);
    if (body.length < size) {
      throw new EOFException("stream ended after " + body.length + " of " + size + " body bytes");
    }
    return body;
  }
}
