package warden.algos.host;

import java.util.Locale;
import org.apache.thrift.TBase;
import org.apache.thrift.TConfiguration;
import org.apache.thrift.TException;
import org.apache.thrift.TSerializer;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TCompactProtocol;
import org.apache.thrift.protocol.TProtocolFactory;
import org.apache.thrift.transport.TMemoryInputTransport;

/**
 * The wire formats the executable speaks, named as its {@code --format} option names them.
 *
 * <p>JSON is carried as opaque bytes (the host needs no JSON library to pass a request through);
 * the two Thrift protocols can also be encoded from and decoded into the generated classes.
 */
public enum WireFormat {
  JSON("json", null),
  THRIFT_BINARY("thrift-binary", new TBinaryProtocol.Factory()),
  THRIFT_COMPACT("thrift-compact", new TCompactProtocol.Factory());

  /**
   * Thrift's default message-size cap (100 MB) would refuse a legitimately large response; the
   * executable already bounds what it accepts (--max-request-mb), so the host trusts its answers.
   */
  private static final TConfiguration UNBOUNDED =
      new TConfiguration(Integer.MAX_VALUE, Integer.MAX_VALUE, TConfiguration.DEFAULT_RECURSION_DEPTH);

  public final String cliName;
  private final TProtocolFactory protocol;

  WireFormat(String cliName, TProtocolFactory protocol) {
    this.cliName = cliName;
    this.protocol = protocol;
  }

  public boolean isThrift() {
    return protocol != null;
  }

  public static WireFormat fromCliName(String name) {
    for (WireFormat format : values()) {
      if (format.cliName.equals(name.toLowerCase(Locale.ROOT))) {
        return format;
      }
    }
    throw new IllegalArgumentException(
        "unknown wire format '" + name + "' (json, thrift-binary, thrift-compact)");
  }

  public byte[] encode(TBase<?, ?> message) {
    requireThrift();
    try {
      return new TSerializer(protocol).serialize(message);
    } catch (TException e) {
      throw new IllegalArgumentException("cannot encode " + message.getClass().getSimpleName(), e);
    }
  }

  /** Fills {@code into} from {@code bytes}; every byte must belong to the message. */
  public <T extends TBase<?, ?>> T decode(T into, byte[] bytes) throws TException {
    requireThrift();
    TMemoryInputTransport transport = new TMemoryInputTransport(UNBOUNDED, bytes);
    into.read(protocol.getProtocol(transport));
    if (transport.getBytesRemainingInBuffer() > 0) {
      throw new TException(
          transport.getBytesRemainingInBuffer() + " trailing bytes after the " + cliName + " message");
    }
    return into;
  }

  private void requireThrift() {
    if (!isThrift()) {
      throw new UnsupportedOperationException(
          "the JSON form is passed through as bytes; use callRaw/invokeRaw for it");
    }
  }
}
