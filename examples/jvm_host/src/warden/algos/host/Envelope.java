package warden.algos.host;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A DSSE v1 envelope (https://github.com/secure-systems-lab/dsse), the one signed-document shape of
 * a release bucket (warden_algos/delivery/dsse.py): {@code {"payloadType", "payload" (base64),
 * "signatures": [{"keyid", "sig"}]}}. Each signature covers {@link #pae}, so the verifier never
 * re-serialises JSON: the signed bytes are the bytes received.
 *
 * <p>Read before any signature is checked, so everything is bounded as on the Python side: the
 * payload at 16 KiB of base64, at most 8 signatures, a payload type of at most 200 characters, a
 * keyid of 64 hex digits and a signature of exactly 64 bytes.
 */
record Envelope(String payloadType, byte[] payload, List<Envelope.Signature> signatures) {
  static final int MAX_PAYLOAD_BASE64 = 16_384;
  static final int MAX_SIGNATURES = 8;
  /** What a plan may carry for one envelope: its JSON, base64; the largest valid one is ~30 KB. */
  static final int MAX_ENVELOPE_BASE64 = 65_536;

  static final Pattern KEYID = Pattern.compile("[0-9a-f]{64}");
  private static final Pattern SIG = Pattern.compile("[A-Za-z0-9+/]{86}==");

  /** One signature: who (the hex sha256 of the raw public key) and the 64 signature bytes. */
  record Signature(String keyid, byte[] sig) {}

  /**
   * The envelope in {@code base64Json} (a plan's {@code channel_statement} or {@code
   * release_signature}: base64 of the envelope's JSON); a {@link PullException} naming {@code what}
   * if it is not one.
   */
  static Envelope fromPlan(String base64Json, String what) throws PullException {
    if (base64Json.length() > MAX_ENVELOPE_BASE64) {
      throw new PullException(
          what + " is over " + MAX_ENVELOPE_BASE64 + " characters: refusing it");
    }
    try {
      return parse(decode(base64Json));
    } catch (IllegalArgumentException e) {
      throw new PullException(what + " is not a valid DSSE envelope: " + e.getMessage(), e);
    }
  }

  private static Envelope parse(byte[] json) {
    Fields root =
        Fields.of(MiniJson.parseIntegers(json), Set.of("payloadType", "payload", "signatures"));
    String payloadType = root.text("payloadType", 200, null);
    String payload = root.text("payload", MAX_PAYLOAD_BASE64, null);
    if (payloadType == null || payload == null) {
      throw new IllegalArgumentException("\"payloadType\" or \"payload\" is missing");
    }
    List<Signature> signatures = new ArrayList<>();
    for (Object each : root.list("signatures", 1, MAX_SIGNATURES)) {
      Fields signature = Fields.of(each, Set.of("keyid", "sig"));
      signatures.add(
          new Signature(signature.string("keyid", KEYID), decode(signature.string("sig", SIG))));
    }
    return new Envelope(payloadType, decode(payload), List.copyOf(signatures));
  }

  /** Strict base64 (padded, standard alphabet), as Python's {@code b64decode(validate=True)}. */
  static byte[] decode(String text) {
    int padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
    if (text.length() % 4 != 0) {
      throw new IllegalArgumentException("not base64 (a length that is not a multiple of 4)");
    }
    for (int i = 0; i < text.length() - padding; i++) {
      char c = text.charAt(i);
      boolean alphabet =
          (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+'
              || c == '/';
      if (!alphabet) {
        throw new IllegalArgumentException("not base64 (a character outside its alphabet)");
      }
    }
    return Base64.getDecoder().decode(text);
  }

  /**
   * DSSE's pre-authentication encoding, what is actually signed: {@code "DSSEv1 " + len(T) + " " +
   * T + " " + len(P) + " " + P}, lengths as ASCII decimal byte counts.
   */
  static byte[] pae(String payloadType, byte[] payload) {
    byte[] type = payloadType.getBytes(StandardCharsets.UTF_8);
    byte[] head =
        ("DSSEv1 " + type.length + " " + payloadType + " " + payload.length + " ")
            .getBytes(StandardCharsets.UTF_8);
    byte[] message = new byte[head.length + payload.length];
    System.arraycopy(head, 0, message, 0, head.length);
    System.arraycopy(payload, 0, message, head.length, payload.length);
    return message;
  }
}
