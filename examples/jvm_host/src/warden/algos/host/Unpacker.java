package warden.algos.host;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * A verified artifact becomes {@code releases/<id>}: unpacked beside it in {@code
 * releases/.<id>.unpacking-<pid>} ({@link SafeTar}: refused whole, before anything is written,
 * if any member could write outside it), checked to run, then renamed into place, so {@code
 * releases/<id>} is either absent or complete and runnable.
 */
final class Unpacker {
  private final Duration smokeTimeout;

  Unpacker(Duration smokeTimeout) {
    this.smokeTimeout = smokeTimeout;
  }

  void unpack(Path archive, ReleaseRecord record, Path target)
      throws IOException, PullException, InterruptedException {
    Path staging =
        target.resolveSibling(
            "." + target.getFileName() + ".unpacking-" + ProcessHandle.current().pid());
    if (Files.isSymbolicLink(staging) || Files.isSymbolicLink(target)) {
      throw new PullException(
          target + " or its staging folder is a symlink the pull did not create");
    }
    InstallDir.deleteTree(staging);
    Files.createDirectory(staging); // mkdir(2): never through a link
    boolean done = false;
    try {
      if (record.mode().equals("onedir")) {
        SafeTar.extract(archive, staging, record.releaseId());
      } else {
        Path program = staging.resolve(InstallDir.EXECUTABLE);
        Files.copy(archive, program);
        Files.setPosixFilePermissions(program, PosixFilePermissions.fromString("rwxr-xr-x"));
      }
      // verbatim: the bytes the signatures cover; a member of that name is replaced, never followed
      Path recordFile = staging.resolve(InstallDir.RECORD);
      Files.deleteIfExists(recordFile);
      Files.write(
          recordFile,
          record.bytes(),
          StandardOpenOption.CREATE_NEW,
          StandardOpenOption.WRITE,
          LinkOption.NOFOLLOW_LINKS);
      smokeTest(InstallDir.executableIn(staging), record);
      InstallDir.deleteTree(target); // a broken leftover: intact() said it is not this release
      Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
      done = true;
    } finally {
      if (!done) {
        InstallDir.deleteTree(staging);
      }
    }
  }

  /**
   * The unpacked program starts, answers {@code version --json} with exit status 0, and holds the
   * algorithms its manifest lists (the check warden_algos/delivery/pull.py makes), before anything points to it.
   */
  private void smokeTest(Path executable, ReleaseRecord record)
      throws IOException, PullException, InterruptedException {
    Path stdout = Files.createTempFile("warden-pull-smoke", ".out");
    Path stderr = Files.createTempFile("warden-pull-smoke", ".err");
    try {
      Process process;
      try {
        process =
            new ProcessBuilder(executable.toString(), "version", "--json")
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(stdout.toFile())
                .redirectError(stderr.toFile())
                .start();
      } catch (IOException e) {
        throw new PullException(
            record.releaseId() + ": the unpacked program does not start: " + e.getMessage(), e);
      }
      if (!process.waitFor(smokeTimeout.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly().waitFor();
        throw new PullException(
            record.releaseId()
                + ": the unpacked program did not answer version --json within "
                + Backoff.seconds(smokeTimeout)
                + " s");
      }
      if (process.exitValue() != 0) {
        throw new PullException(
            record.releaseId()
                + ": the unpacked program exited "
                + process.exitValue()
                + ": "
                + tail(new String(Files.readAllBytes(stderr), StandardCharsets.UTF_8)));
      }
      Map<?, ?> info;
      try {
        info = MiniJson.object(MiniJson.parse(Files.readAllBytes(stdout)), "its answer");
      } catch (IllegalArgumentException e) {
        throw new PullException(
            record.releaseId() + ": version --json did not print JSON: " + e.getMessage(), e);
      }
      if (!Objects.equals(info.get("algorithms"), record.algorithms())) {
        throw new PullException(
            record.releaseId() + ": the program's algorithms differ from its manifest");
      }
    } finally {
      Files.deleteIfExists(stdout);
      Files.deleteIfExists(stderr);
    }
  }

  private static String tail(String text) {
    String stripped = text.strip();
    return stripped.length() <= 500 ? stripped : stripped.substring(stripped.length() - 500);
  }
}
