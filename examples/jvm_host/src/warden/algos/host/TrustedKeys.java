package warden.algos.host;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The release keys a node pins, from the file its operator installs ({@code --trusted-keys FILE},
 * the same file {@code warden-algos pull --trusted-keys} reads): {@code {"keys": [{"keyid",
 * "public_key" (base64 of the raw 32 bytes), "not_after" (a time or null), "comment"}]}}. A keyid
 * must be the hex sha256 of its key, so a copy-paste error is caught here, not as a refusal on
 * every pull. Signatures are Ed25519, checked by the JDK ({@code java.security}, no library).
 */
final class TrustedKeys {
  static final int MAX_KEYS = 16;
  private static final int MAX_FILE_BYTES = 1 << 20;
  private static final Pattern PUBLIC_KEY = Pattern.compile("[A-Za-z0-9+/]{43}=");
  /** The DER head of an X.509 SubjectPublicKeyInfo for Ed25519 (OID 1.3.101.112): 12 bytes. */
  private static final byte[] ED25519_SPKI_PREFIX =
      HexFormat.of().parseHex("302a300506032b6570032100");

  /** One pinned key; {@code notAfter} is null when its trust does not end. */
  private record Key(PublicKey publicKey, String notAfter) {}

  private final Map<String, Key> byId;

  private TrustedKeys(Map<String, Key> byId) {
    this.byId = byId;
  }

  static TrustedKeys load(Path file) throws PullException {
    byte[] raw;
    try (InputStream in = Files.newInputStream(file)) {
      raw = in.readNBytes(MAX_FILE_BYTES + 1);
    } catch (IOException e) {
      throw new PullException(
          "cannot read the trusted keys " + file + ": " + Backoff.describe(e), e);
    }
    Map<String, Key> keys = new LinkedHashMap<>();
    try {
      if (raw.length > MAX_FILE_BYTES) {
        throw new IllegalArgumentException("over " + MAX_FILE_BYTES + " bytes");
      }
      Fields root = Fields.of(MiniJson.parseIntegers(raw), Set.of("keys"));
      for (Object each : root.list("keys", 1, MAX_KEYS)) {
        Fields entry = Fields.of(each, Set.of("keyid", "public_key", "not_after", "comment"));
        String keyid = entry.string("keyid", Envelope.KEYID);
        byte[] publicKey = Envelope.decode(entry.string("public_key", PUBLIC_KEY));
        String notAfter =
            entry.has("not_after") ? entry.string("not_after", UtcTime.PATTERN) : null;
        entry.text("comment", 200, "");
        if (!Sha256.of(publicKey).equals(keyid)) {
          throw new PullException(
              file
                  + ": key "
                  + keyid.substring(0, 12)
                  + "... is not the sha256 of its public_key: copy the entry `warden-algos keys"
                  + " public` printed, whole");
        }
        keys.put(keyid, new Key(ed25519(publicKey, file, keyid), notAfter));
      }
    } catch (IllegalArgumentException e) {
      throw new PullException(file + " is not a valid trusted keys file: " + e.getMessage(), e);
    }
    return new TrustedKeys(keys);
  }

  /**
   * The envelope's payload if a key trusted now signed it as a {@code payloadType} statement; else
   * a {@link PullException} saying why (another kind of statement, unknown keys only, a signature
   * that does not verify, a key whose trust has ended): warden_algos/delivery/signing.py's
   * wording, so a refusal reads the same from either puller.
   */
  byte[] verify(Envelope envelope, String payloadType, String what) throws PullException {
    if (!envelope.payloadType().equals(payloadType)) {
      throw new PullException(
          what
              + ": the envelope holds a '"
              + Fields.shorten(envelope.payloadType())
              + "' statement, not '"
              + payloadType
              + "'");
    }
    byte[] message = Envelope.pae(payloadType, envelope.payload());
    List<String> problems = new ArrayList<>();
    for (Envelope.Signature signature : envelope.signatures()) {
      Key key = byId.get(signature.keyid());
      String shortId = signature.keyid().substring(0, 12);
      if (key == null) {
        problems.add("key " + shortId + "... is not trusted here");
      } else if (key.notAfter() != null && UtcTime.passed(key.notAfter())) {
        problems.add("key " + shortId + "... was trusted until " + key.notAfter());
      } else if (!verifies(key.publicKey(), message, signature.sig())) {
        problems.add("the signature by key " + shortId + "... does not verify (tampered?)");
      } else {
        return envelope.payload();
      }
    }
    throw new PullException(
        what + " is not signed by a trusted key: " + String.join("; ", problems));
  }

  private static boolean verifies(PublicKey key, byte[] message, byte[] sig) {
    try {
      Signature verifier = Signature.getInstance("Ed25519");
      verifier.initVerify(key);
      verifier.update(message);
      return verifier.verify(sig);
    } catch (GeneralSecurityException e) {
      return false; // a malformed signature verifies nothing
    }
  }

  private static PublicKey ed25519(byte[] raw, Path file, String keyid) throws PullException {
    byte[] der = new byte[ED25519_SPKI_PREFIX.length + raw.length];
    System.arraycopy(ED25519_SPKI_PREFIX, 0, der, 0, ED25519_SPKI_PREFIX.length);
    System.arraycopy(raw, 0, der, ED25519_SPKI_PREFIX.length, raw.length);
    try {
      return KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(der));
    } catch (GeneralSecurityException e) {
      throw new PullException(
          file + ": key " + keyid.substring(0, 12) + "... is not an Ed25519 public key", e);
    }
  }
}
