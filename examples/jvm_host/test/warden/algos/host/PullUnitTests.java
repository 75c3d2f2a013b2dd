package warden.algos.host;

import java.nio.charset.StandardCharsets;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarConstants;

/**
 * The puller's checks that need no bucket, in one JVM: the unpacked-size bound (from headers: a
 * real 8 GiB archive would take a minute to make), the "data" filter's modes, DSSE's PAE bytes
 * and the signed-time comparison. Prints what it checked; exits 1 on any failed check.
 */
public final class PullUnitTests {
  private final List<String> failures = new ArrayList<>();
  private int checks;

  public static void main(String[] args) {
    PullUnitTests tests = new PullUnitTests();
    tests.unpackedSizeBound();
    tests.dataFilterModes();
    tests.pae();
    tests.times();
    System.out.printf("pull units: %d checks, %d failed%n", tests.checks, tests.failures.size());
    tests.failures.forEach(failure -> System.out.println("FAILED: " + failure));
    System.exit(tests.failures.isEmpty() ? 0 : 1);
  }

  private void check(boolean condition, String what) {
    checks++;
    if (!condition) {
      failures.add(what);
    }
  }

  private static SafeTar.Header file(String name, long size) {
    return new SafeTar.Header(name, List.of(), TarConstants.LF_NORMAL, size, "", false, 0644);
  }

  private void unpackedSizeBound() {
    long half = SafeTar.MAX_UNPACKED_BYTES / 2;
    String refused = refusal(Arrays.asList(file("a/x", half), file("a/y", half + (1L << 30))));
    check(
        refused.equals(
            "big: refused the artifact: it unpacks to 9.0 GiB, over the limit of 8 GiB; nothing"
                + " was unpacked"),
        "over 8 GiB is refused from the headers: " + refused);
    check(
        refusal(Arrays.asList(file("a/x", half), file("a/y", half))).isEmpty(),
        "exactly 8 GiB is allowed");
    SafeTar.Header device =
        new SafeTar.Header("a/dev", List.of(), TarConstants.LF_CHR, 0, "", false, 0644);
    String special = refusal(List.of(file("a/x", SafeTar.MAX_UNPACKED_BYTES + 1), device));
    check(special.contains("it unpacks to 8.0 GiB"), "the size is checked first, as in Python");
  }

  private static String refusal(List<SafeTar.Header> headers) {
    try {
      SafeTar.check("big", headers);
      return "";
    } catch (PullException e) {
      return e.getMessage();
    }
  }

  private void dataFilterModes() {
    int[][] cases = {
      {06777, 0755}, {0071, 0640}, {0444, 0644}, {0640, 0640}, {0700, 0700}, {0, 0600}
    };
    for (int[] c : cases) {
      String got = PosixFilePermissions.toString(SafeTar.dataFilterMode(c[0]));
      check(got.equals(rwx(c[1])), Integer.toOctalString(c[0]) + " -> " + got);
    }
    check(
        PosixFilePermissions.toString(SafeTar.dataFilterMode(04755)).equals("rwxr-xr-x"),
        "setuid dropped, rwxr-xr-x kept");
  }

  private static String rwx(int mode) {
    StringBuilder out = new StringBuilder();
    for (int shift = 6; shift >= 0; shift -= 3) {
      int bits = mode >> shift;
      out.append((bits & 4) != 0 ? 'r' : '-');
      out.append((bits & 2) != 0 ? 'w' : '-');
      out.append((bits & 1) != 0 ? 'x' : '-');
    }
    return out.toString();
  }

  private void pae() {
    byte[] message = Envelope.pae("t", "ab".getBytes(StandardCharsets.UTF_8));
    check(
        new String(message, StandardCharsets.UTF_8).equals("DSSEv1 1 t 2 ab"),
        "PAE as dsse.py writes it");
    byte[] utf8 = Envelope.pae("\u00e9", new byte[] {0, 1});
    check(
        new String(utf8, 0, 12, StandardCharsets.UTF_8).equals("DSSEv1 2 \u00e9 "),
        "PAE lengths count bytes, not characters");
  }

  private void times() {
    check(UtcTime.PATTERN.matcher(UtcTime.now()).matches(), "now is a signed time");
    check(UtcTime.passed("2000-01-01T00:00:00Z"), "the past has passed");
    check(!UtcTime.passed("2999-01-01T00:00:00Z"), "the future has not");
  }
}
