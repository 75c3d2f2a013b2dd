package warden.algos.host;

import java.util.OptionalLong;

/**
 * The span of points a state has learnt: how many (missing values included) and the first and
 * last of their times (empty when it has seen none). A state scores only points after {@link
 * #end}, which is how {@link SeriesStream} knows which points are new.
 */
public record Seen(long points, OptionalLong start, OptionalLong end) {
  public Seen {
    if (points < 0 || start.isPresent() != end.isPresent() || (points == 0) != start.isEmpty()) {
      throw new IllegalArgumentException(
          "a span of " + points + " points from " + start + " to " + end);
    }
  }

  /** What a state that has seen this span knows after it has also seen {@code times}. */
  Seen then(long[] times) {
    if (times.length == 0) {
      return this;
    }
    return new Seen(
        points + times.length,
        start.isPresent() ? start : OptionalLong.of(times[0]),
        OptionalLong.of(times[times.length - 1]));
  }

  /** How many of {@code times}, from the first, are not after this span: already learnt. */
  int alreadySeen(long[] times) {
    if (end.isEmpty()) {
      return 0;
    }
    int n = 0;
    while (n < times.length && times[n] <= end.getAsLong()) {
      n++;
    }
    return n;
  }
}
