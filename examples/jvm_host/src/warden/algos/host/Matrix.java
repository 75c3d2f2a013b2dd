package warden.algos.host;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;

/**
 * Several series of one entity at once, for a multivariate detector ({@link MatrixDetector}): a
 * row per timestamp, a value per named column in each row, NaN for a missing value. On the wire
 * (serialization/warden.thrift, "Multivariate detection") it is {@code columns} and {@code matrix}
 * (a list per row) or {@code matrix_packed} (row-major little-endian doubles).
 *
 * <p>Checked when made, so that a malformed matrix fails here with an {@link
 * IllegalArgumentException} naming the row rather than as an INVALID_INPUT answer: one row per
 * time, every row one value per column, no infinity (the executable refuses those; NaN is the
 * missing value). The rest (distinct column names, times increasing, the executable's limits) is
 * the executable's to check. Immutable: the cells are copied in, and out.
 */
public final class Matrix {
  private final long[] times;
  private final List<String> columns;
  /** rows x columns, row-major: what a packed matrix carries. */
  private final double[] cells;

  private Matrix(long[] times, List<String> columns, double[] cells) {
    this.times = times;
    this.columns = columns;
    this.cells = cells;
  }

  /** {@code rows[i]} holds time {@code times[i]}'s value of each of {@code columns}, in order. */
  public static Matrix of(long[] times, List<String> columns, double[][] rows) {
    List<String> names = List.copyOf(columns);
    if (names.isEmpty()) {
      throw new IllegalArgumentException("a matrix needs at least one column");
    }
    if (times.length != rows.length) {
      throw new IllegalArgumentException(
          times.length + " times but " + rows.length + " rows: one row per time");
    }
    int width = names.size();
    double[] cells = new double[rows.length * width];
    for (int r = 0; r < rows.length; r++) {
      double[] row = rows[r];
      if (row == null || row.length != width) {
        throw new IllegalArgumentException(
            "row " + r + " has " + (row == null ? "no" : String.valueOf(row.length))
                + " values, not one per column (" + width + ": " + names + ")");
      }
      for (int c = 0; c < width; c++) {
        if (Double.isInfinite(row[c])) {
          throw new IllegalArgumentException(
              "row " + r + ", column " + names.get(c) + " is " + row[c]
                  + ": infinite values are not accepted (NaN marks a missing value)");
        }
      }
      System.arraycopy(row, 0, cells, r * width, width);
    }
    return new Matrix(times.clone(), names, cells);
  }

  public List<String> columns() {
    return columns;
  }

  public int rowCount() {
    return times.length;
  }

  public int columnCount() {
    return columns.size();
  }

  /** A copy of the times, one per row. */
  public long[] times() {
    return times.clone();
  }

  /** A copy of the rows. */
  public double[][] rows() {
    double[][] rows = new double[times.length][];
    for (int r = 0; r < rows.length; r++) {
      rows[r] = row(r);
    }
    return rows;
  }

  /** A copy of row {@code r}. */
  public double[] row(int r) {
    int width = columns.size();
    return Arrays.copyOfRange(cells, r * width, (r + 1) * width);
  }

  public double get(int row, int column) {
    if (row < 0 || row >= times.length || column < 0 || column >= columns.size()) {
      throw new IndexOutOfBoundsException(
          "cell (" + row + ", " + column + ") of " + times.length + " x " + columns.size());
    }
    return cells[row * columns.size() + column];
  }

  /** Rows {@code from} (inclusive) to {@code to} (exclusive), same columns. */
  public Matrix slice(int from, int to) {
    int width = columns.size();
    return new Matrix(
        Arrays.copyOfRange(times, from, to), columns,
        Arrays.copyOfRange(cells, from * width, to * width));
  }

  long[] timesView() {
    return times; // never handed out: the class is immutable
  }

  double[] cellsView() {
    return cells;
  }

  /** {@code matrix_packed}: rows x columns little-endian doubles, row-major. */
  ByteBuffer packed() {
    ByteBuffer buffer = ByteBuffer.allocate(cells.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    buffer.asDoubleBuffer().put(cells);
    return buffer;
  }

  /**
   * {@code width} values a row out of a packed matrix (or a flat array): an answer's matrix, whose
   * width the request's columns give. {@link IllegalArgumentException} if they do not divide it.
   */
  static double[][] reshape(double[] flat, int width) {
    if (width == 0 ? flat.length != 0 : flat.length % width != 0) {
      throw new IllegalArgumentException(
          "a packed matrix of " + flat.length + " values is not rows of " + width);
    }
    double[][] rows = new double[width == 0 ? 0 : flat.length / width][];
    for (int r = 0; r < rows.length; r++) {
      rows[r] = Arrays.copyOfRange(flat, r * width, (r + 1) * width);
    }
    return rows;
  }

  @Override
  public String toString() {
    return times.length + " rows x " + columns;
  }
}
