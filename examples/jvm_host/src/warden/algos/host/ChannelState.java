package warden.algos.host;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code DEST/channel-state.json}: per channel, the largest statement {@code sequence} this node
 * accepted, {@code {"channels": {"prod": {"sequence": N, "release_id": ..., "signed_at": ...}}}};
 * the file warden_algos/delivery/trust.py reads and writes, so a sequence either puller accepted
 * refuses an older statement in the other.
 *
 * <p>Read without following a symlink (a planted link must not make the node trust, or
 * overwrite, another file); an unreadable or invalid state is an error, not a fresh start,
 * because forgetting it would re-open the door to replayed pointers. Written only under the DEST
 * lock, atomically (a temporary file in DEST, then one rename, which replaces a link itself and
 * never its target), and never to a lower sequence.
 */
final class ChannelState {
  static final String FILE = "channel-state.json";
  private static final int MAX_BYTES = 1 << 20;
  private static final int MAX_CHANNELS = 1024;

  /** The newest statement accepted for one channel. */
  record Accepted(long sequence, String releaseId, String signedAt) {}

  private final Map<String, Accepted> channels;

  private ChannelState(Map<String, Accepted> channels) {
    this.channels = channels;
  }

  Accepted last(String channel) {
    return channels.get(channel);
  }

  static ChannelState load(Path dest) throws PullException {
    Path path = dest.resolve(FILE);
    byte[] raw;
    try (SeekableByteChannel channel =
            Files.newByteChannel(path, Set.of(StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS));
        InputStream in = Channels.newInputStream(channel)) {
      raw = in.readNBytes(MAX_BYTES + 1);
    } catch (NoSuchFileException e) {
      return new ChannelState(new LinkedHashMap<>()); // nothing accepted yet
    } catch (IOException e) {
      throw new PullException(
          "cannot read " + path + " (" + Backoff.describe(e) + "; a symlink there is refused)", e);
    }
    try {
      if (raw.length > MAX_BYTES) {
        throw new IllegalArgumentException("over " + MAX_BYTES + " bytes");
      }
      Fields root = Fields.of(MiniJson.parseIntegers(raw), Set.of("channels"));
      Map<String, Accepted> channels = new LinkedHashMap<>();
      if (root.get("channels") != null) {
        if (!(root.get("channels") instanceof Map<?, ?> map) || map.size() > MAX_CHANNELS) {
          throw new IllegalArgumentException(
              "\"channels\" is not an object of at most " + MAX_CHANNELS + " channels");
        }
        for (Map.Entry<?, ?> entry : map.entrySet()) {
          String name = (String) entry.getKey();
          if (!PullPlan.CHANNEL.matcher(name).matches()) {
            throw new PullException(
                path + " names an invalid channel '" + Fields.shorten(name) + "'");
          }
          Fields accepted =
              Fields.of(entry.getValue(), Set.of("sequence", "release_id", "signed_at"));
          channels.put(
              name,
              new Accepted(
                  accepted.integer("sequence", 1, Long.MAX_VALUE),
                  accepted.string("release_id", PullPlan.RELEASE_ID),
                  accepted.string("signed_at", UtcTime.PATTERN)));
        }
      }
      return new ChannelState(channels);
    } catch (IllegalArgumentException e) {
      throw new PullException(
          path
              + " is not a valid channel state ("
              + e.getMessage()
              + "): fix or remove it by hand (removing it forgets which statements this node has"
              + " seen)",
          e);
    }
  }

  /** Remembers {@code statement} as the newest for its channel; never lowers a sequence. */
  void accept(Path dest, ChannelStatement statement) throws IOException {
    Accepted last = channels.get(statement.channel());
    if (last != null && last.sequence() >= statement.sequence()) {
      return;
    }
    Map<String, Accepted> updated = new LinkedHashMap<>(channels);
    updated.put(
        statement.channel(),
        new Accepted(statement.sequence(), statement.releaseId(), statement.signedAt()));
    byte[] data = json(updated).getBytes(StandardCharsets.UTF_8);
    Path temporary = dest.resolve("." + FILE + "." + ProcessHandle.current().pid());
    Files.deleteIfExists(temporary); // a link there is removed, not followed
    try (FileChannel out =
        FileChannel.open(
            temporary,
            Set.of(
                StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE,
                LinkOption.NOFOLLOW_LINKS),
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r--r--")))) {
      ByteBuffer buffer = ByteBuffer.wrap(data);
      while (buffer.hasRemaining()) {
        out.write(buffer);
      }
      out.force(true);
    }
    // rename(2): replaces the old state (or a link planted there) in one step, never follows it
    Files.move(temporary, dest.resolve(FILE), StandardCopyOption.ATOMIC_MOVE);
    channels.clear();
    channels.putAll(updated);
  }

  private static String json(Map<String, Accepted> channels) {
    StringBuilder out = new StringBuilder("{\n  \"channels\": {");
    String separator = "\n";
    for (Map.Entry<String, Accepted> entry : channels.entrySet()) {
      Accepted accepted = entry.getValue();
      out.append(separator)
          .append("    ")
          .append(MiniJson.quote(entry.getKey()))
          .append(": {\"sequence\": ")
          .append(accepted.sequence())
          .append(", \"release_id\": ")
          .append(MiniJson.quote(accepted.releaseId()))
          .append(", \"signed_at\": ")
          .append(MiniJson.quote(accepted.signedAt()))
          .append('}');
      separator = ",\n";
    }
    return out.append(channels.isEmpty() ? "}\n}\n" : "\n  }\n}\n").toString();
  }
}
