package warden.algos.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * Node-side pull from the JVM: make {@code DEST/current} the release a {@link PullPlan} names, or
 * leave it alone. The same rules and the same on-disk layout ({@link InstallDir}) as
 * warden_algos/delivery/pull.py, so either puller can take over a node the other installed:
 *
 * <ul>
 *   <li>the installed artifact's sha256 equals the plan's: nothing is downloaded, nothing changes;
 *   <li>the download is verified (size, then the manifest's sha256, never S3's ETag, which for a
 *       multipart upload is no checksum of the bytes) before it is unpacked, and the unpacked
 *       program must run {@code version --json} before {@code current} switches to it, so a
 *       corrupted or interrupted download never replaces a good install;
 *   <li>{@code current} switches with one rename of a symlink; the old one stays as {@code
 *       previous} for {@link #rollbackLocal};
 *   <li>one pull at a time per {@code DEST} ({@link DestLock}); a partial download left by a killed
 *       pull is resumed by the next one; transient failures are retried with backoff.
 * </ul>
 */
public final class Puller {
  private final Backoff backoff;
  private final Duration lockTimeout;
  private final Downloader downloader;
  private final Unpacker unpacker;
  private final Consumer<String> log;

  /**
   * @param retries attempts after the first, per download
   * @param backoff the wait before the first retry; it doubles for each next one
   * @param lockTimeout how long to wait for another pull on the same DEST
   * @param idleTimeout a connection that delivers nothing for this long is given up (and retried)
   */
  public Puller(
      int retries,
      Duration backoff,
      Duration lockTimeout,
      Duration idleTimeout,
      Consumer<String> log) {
    this.backoff = new Backoff(retries, backoff, log);
    this.lockTimeout = lockTimeout;
    this.downloader = new Downloader(idleTimeout);
    this.unpacker = new Unpacker(Duration.ofSeconds(120));
    this.log = log;
  }

  /** warden_algos/delivery/pull.py's defaults. */
  public static Puller withDefaults(Consumer<String> log) {
    return new Puller(
        5, Duration.ofMillis(500), Duration.ofSeconds(600), Duration.ofSeconds(60), log);
  }

  public PullResult pull(PullPlan plan, Path dest)
      throws IOException, PullException, InterruptedException {
    InstallDir dir = new InstallDir(dest);
    Files.createDirectories(dir.root);
    return DestLock.holding(dir.lockFile(), lockTimeout, () -> pullLocked(plan, dir));
  }

  private PullResult pullLocked(PullPlan plan, InstallDir dir)
      throws IOException, PullException, InterruptedException {
    // Read under the lock: a pull that just finished may have installed this very release.
    Optional<ReleaseRecord> have = dir.installed();
    if (have.isPresent() && have.get().sha256().equals(plan.sha256())) {
      log.accept(plan.channel() + ": " + have.get().releaseId() + " is already installed");
      return new PullResult(
          "current", have.get().releaseId(), InstallDir.executableIn(dir.current()), 0, 0);
    }
    ReleaseRecord record = fetchRecord(plan);
    Path target = dir.release(record.releaseId());
    long downloaded = 0;
    int attempts = 0;
    if (!dir.intact(target, record.sha256())) {
      Files.createDirectories(dir.releases());
      AtomicLong written = new AtomicLong();
      Backoff.Attempted<Path> archive =
          download(plan, record, dir.partialFor(record.sha256()), written);
      unpacker.unpack(archive.value(), record, target);
      Files.delete(archive.value());
      downloaded = written.get();
      attempts = archive.attempts();
    }
    dir.switchTo(target);
    dir.prune();
    log.accept(plan.channel() + ": installed " + record.releaseId());
    return new PullResult(
        "installed",
        record.releaseId(),
        InstallDir.executableIn(dir.current()),
        downloaded,
        attempts);
  }

  /** The release record, which must agree with the plan (the channel's pointer) on what to run. */
  private ReleaseRecord fetchRecord(PullPlan plan) throws PullException, InterruptedException {
    String what = "the release record of " + plan.releaseId();
    byte[] bytes = backoff.run(what, number -> downloader.fetch(plan.releaseUrl())).value();
    ReleaseRecord record = ReleaseRecord.parse(bytes);
    if (!record.releaseId().equals(plan.releaseId())
        || !record.sha256().equals(plan.sha256())
        || record.size() != plan.size()
        || !record.mode().equals(plan.mode())) {
      throw new PullException(
          "the plan names "
              + plan.releaseId()
              + " but its release record disagrees (id, sha256, size or mode); not installing");
    }
    return record;
  }

  /** The artifact, verified, at {@code part}: resumed from whatever an earlier attempt left. */
  private Backoff.Attempted<Path> download(
      PullPlan plan, ReleaseRecord record, Path part, AtomicLong written)
      throws PullException, InterruptedException {
    long expected = record.size();
    return backoff.run(
        record.releaseId(),
        number -> {
          long have = Files.exists(part) ? Files.size(part) : 0;
          if (have > expected) {
            Files.delete(part);
            have = 0;
          }
          if (have < expected) {
            downloader.resume(plan.url(), part, written);
          }
          long size = Files.exists(part) ? Files.size(part) : 0;
          if (size != expected) {
            throw new IOException("got " + size + " of " + expected + " bytes");
          }
          String digest = Sha256.of(part);
          if (!digest.equals(record.sha256())) {
            Files.delete(part); // corrupt: never resume from it
            throw new IOException(
                "sha256 "
                    + digest.substring(0, 12)
                    + "... != manifest's "
                    + record.sha256().substring(0, 12)
                    + "...");
          }
          return part;
        });
  }

  /** Swaps {@code current} and {@code previous}: back to the last release, without the network. */
  public String rollbackLocal(Path dest) throws IOException, PullException, InterruptedException {
    InstallDir dir = new InstallDir(dest);
    if (!Files.isDirectory(dir.root)) {
      throw new PullException(dest + " holds no install");
    }
    return DestLock.holding(
        dir.lockFile(),
        Duration.ofSeconds(60),
        () -> {
          Optional<Path> previous = dir.target(dir.previous());
          if (previous.isEmpty() || !Files.isDirectory(previous.get())) {
            throw new PullException(dest + " has no previous release to roll back to");
          }
          dir.switchTo(previous.get());
          return dir.installed()
              .map(ReleaseRecord::releaseId)
              .orElseThrow(() -> new PullException(previous.get() + " holds no release record"));
        });
  }
}
