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
 *       pull is resumed by the next one; transient failures are retried with backoff;
 *   <li>with pinned release keys ({@link ReleaseTrust}), the plan's signed channel statement is
 *       checked before anything else (trusted key, this channel, not expired, not older than the
 *       newest this node accepted, kept in {@link ChannelState}), then the release record's bytes
 *       and signature, all before the download; an unsigned, mis-signed, expired or replayed
 *       release is refused;
 *   <li>nothing outside {@code DEST} is written or deleted, whatever the bucket holds: an archive
 *       that could write elsewhere is refused before anything is unpacked ({@link SafeTar}), and a
 *       symlink the pull did not create where it keeps its own files is refused, never followed
 *       ({@link InstallDir#checkLayout}).
 * </ul>
 */
public final class Puller {
  private final Backoff backoff;
  private final Duration lockTimeout;
  private final Downloader downloader;
  private final Unpacker unpacker;
  private final ReleaseTrust trust; // null: releases are installed unsigned
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
    this(retries, backoff, lockTimeout, idleTimeout, (ReleaseTrust) null, log);
  }

  /**
   * @param trustedKeys the pinned release keys file: only releases they signed are installed
   *     (null: unsigned releases too, as without the keys)
   */
  public Puller(
      int retries,
      Duration backoff,
      Duration lockTimeout,
      Duration idleTimeout,
      Path trustedKeys,
      Consumer<String> log)
      throws PullException {
    this(
        retries,
        backoff,
        lockTimeout,
        idleTimeout,
        trustedKeys == null ? null : new ReleaseTrust(TrustedKeys.load(trustedKeys)),
        log);
  }

  private Puller(
      int retries,
      Duration backoff,
      Duration lockTimeout,
      Duration idleTimeout,
      ReleaseTrust trust,
      Consumer<String> log) {
    this.backoff = new Backoff(retries, backoff, log);
    this.lockTimeout = lockTimeout;
    this.downloader = new Downloader(idleTimeout);
    this.unpacker = new Unpacker(Duration.ofSeconds(120));
    this.trust = trust;
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
    dir.checkLayout();
    ChannelStatement statement = null; // the signed statement, when keys are pinned
    if (trust != null) {
      statement = trust.verifyChannel(plan);
      ReleaseTrust.checkNotOlder(dir.root, statement);
    }
    // Read under the lock: a pull that just finished may have installed this very release.
    Optional<ReleaseRecord> have = dir.installed();
    if (have.isPresent() && have.get().sha256().equals(plan.sha256())) {
      remember(dir, statement);
      log.accept(plan.channel() + ": " + have.get().releaseId() + " is already installed");
      return new PullResult(
          "current", have.get().releaseId(), InstallDir.executableIn(dir.current()), 0, 0);
    }
    ReleaseRecord record = fetchRecord(plan, statement);
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
    remember(dir, statement);
    dir.prune();
    log.accept(plan.channel() + ": installed " + record.releaseId());
    return new PullResult(
        "installed",
        record.releaseId(),
        InstallDir.executableIn(dir.current()),
        downloaded,
        attempts);
  }

  private static void remember(InstallDir dir, ChannelStatement statement)
      throws IOException, PullException {
    if (statement != null) {
      ChannelState.load(dir.root).accept(dir.root, statement);
    }
  }

  /**
   * The release record, which must agree with the plan (the channel's pointer) on what to run;
   * with pinned keys, its exact bytes must also be the ones the signed statement names, and the
   * release's own signature must verify, before anything else is read from it.
   */
  private ReleaseRecord fetchRecord(PullPlan plan, ChannelStatement statement)
      throws PullException, InterruptedException {
    String what = "the release record of " + plan.releaseId();
    byte[] bytes = backoff.run(what, number -> downloader.fetch(plan.releaseUrl())).value();
    if (statement != null) {
      trust.verifyRelease(statement, bytes, plan.releaseSignature());
    }
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
          if (Files.isSymbolicLink(part)) { // planted since the layout was checked
            throw new PullException(part + " is a symlink the pull did not create: refusing");
          }
          long have = Files.exists(part) ? Files.size(part) : 0;
          if (have > expected) {
            Files.delete(part);
            have = 0;
          }
          if (have < expected) {
            downloader.resume(plan.url(), part, expected, written);
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
          dir.checkLayout();
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
