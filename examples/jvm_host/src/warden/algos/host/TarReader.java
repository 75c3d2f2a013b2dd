package warden.algos.host;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Commons Compress's tar reader, which also keeps each member's name as the archive spelled it.
 *
 * <p>Why: the library strips the leading slashes of a name that comes from a GNU long-name
 * ({@code L}) or a PAX {@code path} record (not of one in the plain header), so {@code /etc/x},
 * spelled long, would read as the harmless {@code etc/x} and escape the "absolute name" refusal
 * Python's tarfile makes. Those records are entry data the library reads through {@link #read},
 * so this class collects the bytes of each such header entry as they pass and decodes the names
 * itself ({@link #spelledNames}): every name the archive gave the member just returned, before
 * normalisation. A header entry is bounded at 1 MiB (the library would hold it in memory too).
 * It keeps each member's type flag too ({@link #typeFlag}).
 */
final class TarReader extends TarArchiveInputStream {
  private static final int MAX_HEADER_BYTES = 1 << 20;
  /** Where a ustar header keeps its one-byte type flag. */
  private static final int TYPE_FLAG_OFFSET = 156;

  private final ByteArrayOutputStream header = new ByteArrayOutputStream();
  private final List<String> spelled = new ArrayList<>();
  private TarArchiveEntry collecting; // the header entry whose bytes {@link #header} holds
  private TarArchiveEntry harvested; // the last one decoded: what is read of it after is padding
  private String globalPath;
  private byte typeFlag;
  private int depth;

  TarReader(InputStream in) {
    super(in, "UTF-8");
  }

  /** The names the archive gave the member {@link #getNextTarEntry} last returned. */
  List<String> spelledNames() {
    List<String> names = new ArrayList<>(spelled);
    if (globalPath != null) {
      names.add(globalPath);
    }
    return names;
  }

  /**
   * The type flag of the member {@link #getNextTarEntry} last returned, as its header spells it.
   * This version of the library has no getter for it, and its {@code isFile()} is true for any
   * type it does not know: Python's tarfile refuses those as special members, so must this.
   */
  byte typeFlag() {
    return typeFlag;
  }

  @Override
  protected byte[] readRecord() throws IOException {
    byte[] record = super.readRecord();
    if (record != null && record.length > TYPE_FLAG_OFFSET) {
      typeFlag = record[TYPE_FLAG_OFFSET]; // the last header read is the member's own
    }
    return record;
  }

  @Override
  public TarArchiveEntry getNextTarEntry() throws IOException {
    // The library reads a header entry's data, then calls this again (nested) for the member it
    // describes: at that point the bytes collected belong to the header entry still current.
    if (depth == 0) {
      spelled.clear();
    } else {
      harvest();
    }
    depth++;
    try {
      return super.getNextTarEntry();
    } finally {
      depth--;
    }
  }

  @Override
  public int read(byte[] buffer, int offset, int length) throws IOException {
    int read = super.read(buffer, offset, length);
    TarArchiveEntry current = getCurrentEntry();
    if (read > 0 && current != null && current != harvested && isNameHeader(current)) {
      if (current != collecting) {
        header.reset();
        collecting = current;
      }
      if (header.size() + read > MAX_HEADER_BYTES) {
        throw new IOException("a tar header entry over " + MAX_HEADER_BYTES + " bytes");
      }
      header.write(buffer, offset, read);
    }
    return read;
  }

  private static boolean isNameHeader(TarArchiveEntry entry) {
    return entry.isGNULongNameEntry() || entry.isPaxHeader() || entry.isGlobalPaxHeader();
  }

  private void harvest() {
    TarArchiveEntry current = getCurrentEntry();
    if (current == null || current != collecting) {
      return;
    }
    byte[] data = header.toByteArray();
    harvested = current;
    collecting = null;
    header.reset();
    if (current.isGNULongNameEntry()) {
      int end = data.length;
      while (end > 0 && data[end - 1] == 0) {
        end--; // the library drops trailing NULs too
      }
      spelled.add(new String(data, 0, end, StandardCharsets.UTF_8));
      return;
    }
    String path = paxPath(data);
    if (path == null) {
      return;
    }
    if (current.isGlobalPaxHeader()) {
      globalPath = path;
    } else {
      spelled.add(path);
    }
  }

  /** The last {@code path} record of a PAX header ({@code "<length> <key>=<value>\n"}...). */
  private static String paxPath(byte[] data) {
    String path = null;
    int at = 0;
    while (at < data.length) {
      int space = at;
      long length = 0;
      while (space < data.length
          && data[space] >= '0'
          && data[space] <= '9'
          && length < data.length) {
        length = length * 10 + (data[space] - '0');
        space++;
      }
      if (space >= data.length
          || data[space] != ' '
          || length <= space - at
          || at + length > data.length) {
        return path; // malformed: the library refuses such a header itself
      }
      int end = (int) (at + length);
      String record = new String(data, space + 1, end - space - 1, StandardCharsets.UTF_8);
      if (record.startsWith("path=") && record.endsWith("\n")) {
        path = record.substring("path=".length(), record.length() - 1);
      }
      at = end;
    }
    return path;
  }
}
