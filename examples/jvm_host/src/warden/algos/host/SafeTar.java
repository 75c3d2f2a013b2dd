package warden.algos.host;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/**
 * Unpacks a onedir tarball inside the JVM (Apache Commons Compress, not GNU tar, which keeps
 * absolute and {@code ..} symlinks and, as root, makes device nodes), or refuses it whole before
 * anything is written, with exactly the rules of warden_algos/delivery/pull.py's {@code
 * safe_extract}: a one-line {@link PullException} names the first offending member.
 *
 * <p>Two passes over the archive. The first reads headers only and checks every member: allowed
 * are folders, regular files and symlinks whose target is relative and has no {@code ..} (a real
 * PyInstaller onedir has a few: {@code _internal/libx.so -> numpy.libs/libx.so}); refused are hard
 * links, devices, fifos and any other special member, absolute names, NUL, {@code ..} components,
 * empty names, a name given twice, any member below a symlink (it would be written through the
 * link), over {@value #MAX_MEMBERS} members, over 8 GiB unpacked. The second pass writes, as
 * Python's {@code "data"} filter does: no setuid, setgid or sticky bit, no group or other write,
 * owner read-write, the executable bits only where the owner's is set, ownership the puller's;
 * and never through a symlink ({@code CREATE_NEW}, {@code NOFOLLOW_LINKS}: a file or folder is
 * only ever created where nothing is).
 *
 * <p>Sparse members (which Python's tarfile also reads) are refused: no artifact this SDK builds
 * has one, and their stored and real sizes differ, which would complicate every bound above.
 */
final class SafeTar {
  static final int MAX_MEMBERS = 200_000;
  static final long MAX_UNPACKED_BYTES = 8L << 30;

  private enum Kind {
    FOLDER,
    FILE,
    SYMLINK
  }

  /** A member the first pass accepted: its name, its path below the folder, what to make. */
  private record Member(String name, String key, Kind kind, long size, String link, int mode) {}

  /** A member as the archive gives it, before any check. */
  record Header(
      String name,
      List<String> spelled,
      byte type,
      long size,
      String link,
      boolean sparse,
      int mode) {}

  private final String what;

  private SafeTar(String what) {
    this.what = what;
  }

  /** Unpacks {@code archive} into the empty folder {@code into}, or refuses it whole. */
  static void extract(Path archive, Path into, String what) throws PullException {
    SafeTar tar = new SafeTar(what);
    List<Member> members = tar.check(tar.headers(archive));
    tar.write(archive, into, members);
  }

  // first pass: headers only ----------------------------------------------------------------

  private List<Header> headers(Path archive) throws PullException {
    List<Header> headers = new ArrayList<>();
    try (TarReader tar = open(archive)) {
      for (TarArchiveEntry entry; (entry = tar.getNextTarEntry()) != null; ) {
        headers.add(header(entry, tar));
        if (headers.size() > MAX_MEMBERS) {
          throw new PullException(
              what
                  + ": refused the artifact: over "
                  + String.format(Locale.ROOT, "%,d", MAX_MEMBERS)
                  + " members; nothing was unpacked");
        }
      }
    } catch (IOException | RuntimeException e) {
      throw cannotUnpack(e);
    }
    return headers;
  }

  private static Header header(TarArchiveEntry entry, TarReader tar) {
    byte type = tar.typeFlag();
    String name = entry.getName();
    boolean folder =
        type == TarConstants.LF_DIR || (type == TarConstants.LF_OLDNORM && name.endsWith("/"));
    if (folder) {
      type = TarConstants.LF_DIR;
      name = stripTrailingSlashes(name); // as tarfile names a folder
    }
    return new Header(
        name,
        tar.spelledNames(),
        type,
        entry.getSize(),
        entry.getLinkName(),
        entry.isSparse(),
        entry.getMode());
  }

  private static String stripTrailingSlashes(String name) {
    int end = name.length();
    while (end > 0 && name.charAt(end - 1) == '/') {
      end--;
    }
    return name.substring(0, end);
  }

  /** pull.py's {@code _check_members}, in its order; a refusal names {@code what}. */
  static void check(String what, List<Header> headers) throws PullException {
    new SafeTar(what).check(headers);
  }

  private List<Member> check(List<Header> headers) throws PullException {
    long unpacked = 0;
    for (Header header : headers) {
      if (isFile(header.type())) {
        unpacked += header.size();
      }
    }
    if (unpacked > MAX_UNPACKED_BYTES) {
      throw new PullException(
          String.format(
              Locale.ROOT,
              "%s: refused the artifact: it unpacks to %.1f GiB, over the limit of %d GiB; nothing"
                  + " was unpacked",
              what,
              unpacked / (double) (1L << 30),
              MAX_UNPACKED_BYTES >> 30));
    }
    Set<String> names = new HashSet<>();
    Set<String> links = new HashSet<>();
    List<Member> members = new ArrayList<>();
    for (Header header : headers) {
      String name = header.name();
      // the library strips the slashes a long name starts with: the spelling tells
      String spelledAbsolute =
          header.spelled().stream().filter(n -> n.startsWith("/")).findFirst().orElse(null);
      if (spelledAbsolute != null) {
        throw refuse(spelledAbsolute, "has an absolute or invalid name");
      }
      if (name.startsWith("/") || name.indexOf('\0') >= 0) {
        throw refuse(name, "has an absolute or invalid name");
      }
      List<String> parts = Arrays.asList(name.split("/", -1));
      if (parts.contains("..")) {
        throw refuse(name, "has a '..' component");
      }
      String key = key(parts);
      if (key.isEmpty()) {
        throw refuse(name, "has an empty name");
      }
      if (!names.add(key)) {
        throw refuse(name, "appears twice");
      }
      byte type = header.type();
      if (type == TarConstants.LF_LINK) {
        throw refuse(name, "is a hard link (to " + quoted(header.link()) + ")");
      }
      Kind kind;
      if (type == TarConstants.LF_SYMLINK) {
        String target = header.link();
        if (target.isEmpty()
            || target.startsWith("/")
            || Arrays.asList(target.split("/", -1)).contains("..")) {
          throw refuse(name, "is a symlink leading out of its folder (" + quoted(target) + ")");
        }
        links.add(key);
        kind = Kind.SYMLINK;
      } else if (type == TarConstants.LF_DIR) {
        kind = Kind.FOLDER;
      } else if (isFile(type) && !header.sparse()) {
        if (name.endsWith("/")) {
          throw refuse(name, "is a file whose name ends with '/'");
        }
        kind = Kind.FILE;
      } else if (header.sparse()) {
        throw refuse(name, "is a sparse file (not supported here)");
      } else {
        throw refuse(name, "is a device, fifo or other special file");
      }
      members.add(new Member(name, key, kind, header.size(), header.link(), header.mode()));
    }
    for (Member member : members) {
      String[] parts = member.key().split("/");
      StringBuilder prefix = new StringBuilder();
      for (int depth = 0; depth < parts.length - 1; depth++) {
        prefix.append(depth == 0 ? "" : "/").append(parts[depth]);
        if (links.contains(prefix.toString())) {
          throw refuse(member.name(), "lies below a symlink");
        }
      }
    }
    return members;
  }

  private static boolean isFile(byte type) {
    return type == TarConstants.LF_NORMAL
        || type == TarConstants.LF_OLDNORM
        || type == TarConstants.LF_CONTIG;
  }

  /** A member's path below the folder: its name without empty and {@code .} components. */
  private static String key(List<String> parts) {
    return String.join("/", parts.stream().filter(p -> !p.isEmpty() && !p.equals(".")).toList());
  }

  private PullException refuse(String name, String why) {
    return new PullException(
        what
            + ": refused the artifact: member "
            + quoted(name)
            + " "
            + why
            + "; nothing was unpacked");
  }

  /** A name in a message: quoted, on one line whatever it holds. */
  static String quoted(String name) {
    StringBuilder out = new StringBuilder("'");
    String shown = name.length() <= 200 ? name : name.substring(0, 200) + "...";
    for (int i = 0; i < shown.length(); i++) {
      char c = shown.charAt(i);
      if (c < 0x20 || c == 0x7f) {
        out.append(String.format(Locale.ROOT, "\\x%02x", (int) c));
      } else if (c == '\\' || c == '\'') {
        out.append('\\').append(c);
      } else {
        out.append(c);
      }
    }
    return out.append('\'').toString();
  }

  private PullException changed() {
    return new PullException(what + ": the artifact changed between its two reads: refusing it");
  }

  private PullException cannotUnpack(Exception e) {
    return new PullException(what + ": cannot unpack the artifact: " + Backoff.describe(e), e);
  }

  // second pass: write ----------------------------------------------------------------------

  private void write(Path archive, Path into, List<Member> members) throws PullException {
    List<Path> folders = new ArrayList<>();
    List<FileTime> times = new ArrayList<>();
    try (TarReader tar = open(archive)) {
      int index = 0;
      for (TarArchiveEntry entry; (entry = tar.getNextTarEntry()) != null; index++) {
        Header header = header(entry, tar);
        if (index >= members.size()
            || !members.get(index).name().equals(header.name())
            || members.get(index).size() != header.size()) {
          throw changed();
        }
        Member member = members.get(index);
        Path path = into.resolve(member.key());
        makeFolders(into, path.getParent());
        switch (member.kind()) {
          case FOLDER -> {
            makeFolders(into, path);
            folders.add(path);
            times.add(entry.getLastModifiedTime());
          }
          case SYMLINK -> Files.createSymbolicLink(path, Path.of(member.link()));
          case FILE -> {
            writeFile(tar, path, member);
            setTime(path, entry.getLastModifiedTime());
          }
        }
      }
      if (index != members.size()) {
        throw changed();
      }
      for (int i = folders.size() - 1; i >= 0; i--) { // last: writing into a folder touches it
        setTime(folders.get(i), times.get(i));
      }
    } catch (IOException | RuntimeException e) {
      throw cannotUnpack(e);
    }
  }

  /** {@code folder} and its parents below {@code into}, each a real folder, never a link. */
  private static void makeFolders(Path into, Path folder) throws IOException {
    if (folder.equals(into)) {
      return;
    }
    makeFolders(into, folder.getParent());
    if (!Files.exists(folder, LinkOption.NOFOLLOW_LINKS)) {
      Files.createDirectory(folder); // mkdir(2): fails on anything there, a link included
    } else if (!Files.isDirectory(folder, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(into.relativize(folder) + " is not a folder");
    }
  }

  private static void writeFile(TarReader tar, Path path, Member member) throws IOException {
    try (FileChannel out =
        FileChannel.open(
            path,
            Set.of(
                StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE,
                LinkOption.NOFOLLOW_LINKS),
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
      byte[] buffer = new byte[1 << 16];
      long left = member.size();
      while (left > 0) {
        int read = tar.read(buffer, 0, (int) Math.min(buffer.length, left));
        if (read < 0) {
          throw new IOException(member.name() + " is truncated");
        }
        ByteBuffer chunk = ByteBuffer.wrap(buffer, 0, read);
        while (chunk.hasRemaining()) {
          out.write(chunk);
        }
        left -= read;
      }
    }
    Files.getFileAttributeView(path, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
        .setPermissions(dataFilterMode(member.mode()));
  }

  /**
   * Python's {@code "data"} filter for a regular file: {@code mode & 0o755}, the executable bits
   * cleared unless the owner's is set, then owner read-write.
   */
  static Set<PosixFilePermission> dataFilterMode(int mode) {
    int filtered = mode & 0755;
    if ((filtered & 0100) == 0) {
      filtered &= ~0111;
    }
    filtered |= 0600;
    Set<PosixFilePermission> permissions = EnumSet.noneOf(PosixFilePermission.class);
    PosixFilePermission[] order = {
      PosixFilePermission.OTHERS_EXECUTE,
      PosixFilePermission.OTHERS_WRITE,
      PosixFilePermission.OTHERS_READ,
      PosixFilePermission.GROUP_EXECUTE,
      PosixFilePermission.GROUP_WRITE,
      PosixFilePermission.GROUP_READ,
      PosixFilePermission.OWNER_EXECUTE,
      PosixFilePermission.OWNER_WRITE,
      PosixFilePermission.OWNER_READ
    };
    for (int bit = 0; bit < order.length; bit++) {
      if ((filtered & (1 << bit)) != 0) {
        permissions.add(order[bit]);
      }
    }
    return permissions;
  }

  private static void setTime(Path path, FileTime time) throws IOException {
    if (time != null) {
      Files.getFileAttributeView(path, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
          .setTimes(time, null, null);
    }
  }

  /** The tar stream: gzip'd, bzip2'd or plain, told apart by their first bytes as tarfile does. */
  private static TarReader open(Path archive) throws IOException {
    InputStream in = new BufferedInputStream(Files.newInputStream(archive), 1 << 16);
    try {
      in.mark(3);
      byte[] magic = in.readNBytes(3);
      in.reset();
      if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
        in = new GzipCompressorInputStream(in, true);
      } else if (magic.length == 3 && magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h') {
        in = new BZip2CompressorInputStream(in, true);
      }
      return new TarReader(in);
    } catch (IOException | RuntimeException e) {
      in.close();
      throw e;
    }
  }
}
