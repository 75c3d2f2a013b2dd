package warden.algos.host;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;

/**
 * One pull at a time per {@code DEST}: an exclusive lock on {@code DEST/.lock}.
 *
 * <p>On Linux {@link FileChannel#tryLock()} is a POSIX record lock ({@code fcntl F_SETLK}) over
 * the whole file, the same kind warden_algos/delivery/pull.py takes with {@code fcntl.lockf}, so a Java pull and
 * a Python pull on one node exclude each other too. The kernel drops the lock when the process
 * dies, so a killed pull never leaves {@code DEST} locked. Within this JVM, a second thread gets
 * {@link OverlappingFileLockException} rather than the lock (POSIX locks belong to the process),
 * and waits like any other contender. The lock file is opened without following a symlink, as
 * pull.py opens it ({@code O_NOFOLLOW}).
 */
final class DestLock {
  private static final long POLL_MILLIS = 50;

  /** What runs while the lock is held. */
  interface Body<T> {
    T run() throws IOException, PullException, InterruptedException;
  }

  private DestLock() {}

  static <T> T holding(Path lockFile, Duration timeout, Body<T> body)
      throws IOException, PullException, InterruptedException {
    FileChannel channel;
    try { // O_NOFOLLOW: a planted link must not make us create or open a file elsewhere
      channel =
          FileChannel.open(
              lockFile,
              StandardOpenOption.CREATE,
              StandardOpenOption.WRITE,
              LinkOption.NOFOLLOW_LINKS);
    } catch (IOException e) {
      throw new PullException(
          "cannot open the lock "
              + lockFile
              + " ("
              + Backoff.describe(e)
              + "; a symlink there is refused)",
          e);
    }
    try (channel) {
      FileLock lock = acquire(channel, lockFile, timeout);
      try {
        return body.run();
      } finally {
        lock.release();
      }
    }
  }

  private static FileLock acquire(FileChannel channel, Path lockFile, Duration timeout)
      throws IOException, PullException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      try {
        FileLock lock = channel.tryLock();
        if (lock != null) {
          return lock;
        }
      } catch (OverlappingFileLockException heldByThisJvm) {
        // another thread's pull: wait for it like for another process
      }
      if (System.nanoTime() - deadline > 0) {
        throw new PullException(
            "another pull holds " + lockFile + " for over " + Backoff.seconds(timeout) + " s");
      }
      Thread.sleep(POLL_MILLIS);
    }
  }
}
