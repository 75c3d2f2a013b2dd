package warden.algos.host;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The layout warden_algos/delivery/pull.py defines for {@code DEST}, so that the Python and Java pullers can take
 * turns on one node:
 *
 * <pre>
 * DEST/releases/&lt;id&gt;/        an unpacked artifact and the release.json it came with
 * DEST/current, DEST/previous  relative symlinks into releases/
 * DEST/.lock                   the lock both pullers take
 * DEST/.partial/&lt;sha256&gt;.part  a download in progress, on the same filesystem
 * DEST/channel-state.json      the newest signed statement accepted, per channel
 * </pre>
 *
 * <p>Nothing outside DEST is written or deleted through this layout: {@link #checkLayout} refuses,
 * and never follows, a symlink the pull did not create where it keeps its own files, as pull.py's
 * {@code _check_layout} does, before the pull touches any of them.
 */
final class InstallDir {
  static final String EXECUTABLE = "warden-algos";
  static final String RECORD = "release.json";

  final Path root;

  InstallDir(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  Path current() {
    return root.resolve("current");
  }

  Path previous() {
    return root.resolve("previous");
  }

  Path releases() {
    return root.resolve("releases");
  }

  Path release(String releaseId) {
    return releases().resolve(releaseId);
  }

  Path lockFile() {
    return root.resolve(".lock");
  }

  Path partial() {
    return root.resolve(".partial");
  }

  /** Where the artifact with this sha256 is downloaded; partials of other artifacts are deleted. */
  Path partialFor(String sha256) throws IOException, PullException {
    Path folder = partial();
    if (!Files.exists(folder, LinkOption.NOFOLLOW_LINKS)) {
      Files.createDirectory(folder); // mkdir(2): never through a link
    }
    checkLayout(); // .partial is a real folder and holds only regular files
    try (Stream<Path> entries = Files.list(folder)) {
      for (Path stale : entries.toList()) {
        if (!stale.getFileName().toString().startsWith(sha256)) {
          Files.deleteIfExists(stale); // another release's (a regular file, checked): useless now
        }
      }
    }
    return folder.resolve(sha256 + ".part");
  }

  /**
   * Refuses (never follows) a symlink the pull did not create where it keeps its own files: {@code
   * .lock}, {@code .partial} and what it holds (regular files only), {@code releases} and its
   * entries, {@code channel-state.json}; {@code current} and {@code previous} must be the pull's
   * own links into {@code releases/}.
   */
  void checkLayout() throws IOException, PullException {
    for (String name : List.of(".lock", ".partial", "releases", ChannelState.FILE)) {
      if (Files.isSymbolicLink(root.resolve(name))) {
        throw refuse(root.resolve(name), "is a symlink the pull did not create");
      }
    }
    for (Path folder : List.of(partial(), releases())) {
      if (Files.exists(folder, LinkOption.NOFOLLOW_LINKS)
          && !Files.isDirectory(folder, LinkOption.NOFOLLOW_LINKS)) {
        throw refuse(folder, "is not a folder");
      }
    }
    if (Files.isDirectory(partial(), LinkOption.NOFOLLOW_LINKS)) {
      try (Stream<Path> entries = Files.list(partial())) {
        for (Path entry : entries.toList()) {
          if (!Files.isRegularFile(entry, LinkOption.NOFOLLOW_LINKS)) {
            throw refuse(entry, "is not a regular file the pull created");
          }
        }
      }
    }
    if (Files.isDirectory(releases(), LinkOption.NOFOLLOW_LINKS)) {
      try (Stream<Path> entries = Files.list(releases())) {
        for (Path entry : entries.toList()) {
          if (Files.isSymbolicLink(entry)) {
            throw refuse(entry, "is a symlink the pull did not create");
          }
        }
      }
    }
    Path releasesReal = realOrLexical(releases());
    for (Path link : List.of(current(), previous())) {
      if (Files.isSymbolicLink(link)) {
        Path target = realOrLexical(link.resolveSibling(Files.readSymbolicLink(link)));
        if (!releasesReal.equals(target.getParent())) {
          throw refuse(link, "points outside releases/");
        }
      } else if (Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
        throw refuse(link, "is not the pull's symlink");
      }
    }
  }

  private static PullException refuse(Path path, String why) {
    return new PullException(
        path + " " + why + ": not touching it; remove it (the pull recreates it)");
  }

  /** Where {@code path} leads, links resolved as far as it exists (Python's resolve()). */
  private static Path realOrLexical(Path path) throws IOException {
    Path normal = path.toAbsolutePath().normalize();
    if (Files.exists(normal)) {
      return normal.toRealPath();
    }
    Path parent = normal.getParent();
    return parent == null ? normal : realOrLexical(parent).resolve(normal.getFileName());
  }

  /** The program inside an unpacked release: a onedir folder's, or the onefile itself. */
  static Path executableIn(Path releaseDir) {
    Path onedir = releaseDir.resolve(EXECUTABLE).resolve(EXECUTABLE);
    return Files.isRegularFile(onedir) ? onedir : releaseDir.resolve(EXECUTABLE);
  }

  /** The record of the release {@code current} holds; empty if none, or unreadable. */
  Optional<ReleaseRecord> installed() {
    return recordIn(current());
  }

  /** An earlier pull already unpacked and checked this release (e.g. a rollback's target). */
  boolean intact(Path releaseDir, String sha256) {
    return recordIn(releaseDir).map(r -> r.sha256().equals(sha256)).orElse(false)
        && Files.isRegularFile(executableIn(releaseDir));
  }

  private static Optional<ReleaseRecord> recordIn(Path releaseDir) {
    try {
      return Optional.of(ReleaseRecord.parse(Files.readAllBytes(releaseDir.resolve(RECORD))));
    } catch (IOException | PullException e) {
      return Optional.empty(); // not installed, or half-written by hand: either way, install
    }
  }

  /** Where a link in DEST points, as an absolute path; empty if it is not a link. */
  Optional<Path> target(Path link) throws IOException {
    if (!Files.isSymbolicLink(link)) {
      return Optional.empty();
    }
    return Optional.of(root.resolve(Files.readSymbolicLink(link)).normalize());
  }

  /**
   * {@code current -> target} in one rename (a host starting the executable sees the old release
   * or the new one, never a half); the old {@code current} becomes {@code previous}.
   */
  void switchTo(Path target) throws IOException {
    Optional<Path> old = target(current());
    replaceLink(current(), target);
    if (old.isPresent() && !old.get().equals(target) && Files.isDirectory(old.get())) {
      replaceLink(previous(), old.get());
    }
  }

  private void replaceLink(Path link, Path target) throws IOException {
    Path temporary =
        link.resolveSibling("." + link.getFileName() + "." + ProcessHandle.current().pid());
    Files.deleteIfExists(temporary);
    Files.createSymbolicLink(temporary, root.relativize(target)); // relative: DEST can move
    // rename(2): replaces the old link in one step, and never follows it
    Files.move(temporary, link, StandardCopyOption.ATOMIC_MOVE);
  }

  /**
   * Keeps the releases {@code current} and {@code previous} point to and removes the rest, and
   * any unpacking folder a killed pull left behind (safe: unpacking only happens under the lock,
   * which this pull holds).
   */
  void prune() throws IOException {
    Set<Path> keep = new HashSet<>();
    for (Path link : List.of(current(), previous())) {
      if (Files.exists(link)) {
        keep.add(link.toRealPath());
      }
    }
    try (Stream<Path> entries = Files.list(releases())) {
      for (Path entry : entries.toList()) {
        String name = entry.getFileName().toString();
        boolean staging = name.startsWith(".") && name.contains(".unpacking-");
        if (staging || (!name.startsWith(".") && !keep.contains(entry.toRealPath()))) {
          deleteTree(entry);
        }
      }
    }
  }

  /** Deletes a folder (or file) and everything in it; symlinks are removed, never followed. */
  static void deleteTree(Path path) throws IOException {
    if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(
        path,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attributes)
              throws IOException {
            Files.deleteIfExists(file);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path dir, IOException error)
              throws IOException {
            if (error != null && !(error instanceof NoSuchFileException)) {
              throw error;
            }
            Files.deleteIfExists(dir);
            return FileVisitResult.CONTINUE;
          }
        });
  }
}
