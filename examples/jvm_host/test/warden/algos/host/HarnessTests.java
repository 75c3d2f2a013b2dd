package warden.algos.host;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.thrift.TException;
import warden.algos.thrift.DetectPayload;
import warden.algos.thrift.DetectResult;
import warden.algos.thrift.ErrorCode;
import warden.algos.thrift.GraphEdge;
import warden.algos.thrift.RcaPayload;
import warden.algos.thrift.Request;
import warden.algos.thrift.Response;
import warden.algos.thrift.TimeSeries;

/**
 * The contract, checked from Java against the real executable. pytest runs one scenario per JVM:
 *
 * <pre>
 * java -cp CP warden.algos.host.HarnessTests SCENARIO --command CMD [--option ARG]... [VECTOR_DIR...]
 * </pre>
 *
 * Each scenario prints what it checked and exits 0, or prints every failed check and exits 1. No
 * test framework: Debian's libthrift-java and the JDK are all the harness may assume.
 */
public final class HarnessTests {
  private static final long T0 = 1_700_000_000L;
  private static final Duration GENEROUS = Duration.ofSeconds(60);

  private final List<String> failures = new ArrayList<>();
  private int checks;
  private String command = "warden-algos";
  private final List<String> options = new ArrayList<>();
  private final List<Path> vectors = new ArrayList<>();

  public static void main(String[] args) throws Exception {
    HarnessTests tests = new HarnessTests();
    String scenario = args[0];
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--command" -> tests.command = args[++i];
        case "--option" -> tests.options.add(args[++i]);
        default -> tests.vectors.add(Path.of(args[i]));
      }
    }
    long start = System.nanoTime();
    switch (scenario) {
      case "vectors" -> tests.vectors();
      case "concurrency" -> tests.concurrency();
      case "worker_killed" -> tests.workerKilled();
      case "deadline" -> tests.deadline();
      case "malformed_frame" -> tests.malformedFrame();
      case "huge_request" -> tests.hugeRequest();
      case "matrix" -> tests.matrix();
      case "explanations" -> tests.explanations();
      case "rca_graph" -> tests.rcaGraph();
      default -> throw new IllegalArgumentException("unknown scenario " + scenario);
    }
    System.out.printf(
        "%s: %d checks, %d failed, %.1f s%n",
        scenario, tests.checks, tests.failures.size(), (System.nanoTime() - start) / 1e9);
    for (String failure : tests.failures) {
      System.out.println("FAILED: " + failure);
    }
    System.exit(tests.failures.isEmpty() ? 0 : 1);
  }

  private void check(boolean condition, String what) {
    checks++;
    if (!condition) {
      failures.add(what);
    }
  }

  private Executable executable(WireFormat format) {
    return Executable.of(command, format)
        .withOptions(options.toArray(String[]::new))
        .withStderr(line -> {});
  }

  // ---------------------------------------------------------------------------------- vectors

  /**
   * Every shared vector, every format: one-shot and pooled answers equal the stored bytes (a case
   * with {@code numbers_rtol}: the same document, floats within it; see {@link RoundedText}).
   */
  private void vectors() throws IOException, TException {
    List<String> rounding = RoundedText.selfCheck();
    check(rounding.isEmpty(), "RoundedText forgives what it must not: " + rounding);
    int explained = 0;
    for (Path vector : vectors) {
      explained += explainedAlike(vector) ? 1 : 0;
    }
    System.out.println("vectors with explanations, read alike from every format: " + explained);
    for (WireFormat format : WireFormat.values()) {
      OneShotInvoker invoker = new OneShotInvoker(executable(format));
      try (WorkerPool pool = new WorkerPool(executable(format), 2, GENEROUS)) {
        for (Path vector : vectors) {
          String name = vector.getFileName() + " " + format.cliName;
          byte[] request = Files.readAllBytes(vector.resolve("request." + format.cliName));
          byte[] expected = Files.readAllBytes(vector.resolve("response." + format.cliName));
          double rtol = numbersRtol(vector);
          byte[] oneShot = invoker.invokeRaw(request, GENEROUS);
          check(
              sameAnswer(format, oneShot, expected, rtol),
              name + ": one-shot answer differs from the stored response:\n  got      "
                  + show(format, oneShot) + "\n  expected " + show(format, expected));
          for (int round = 0; round < 2; round++) {
            byte[] pooled = pool.callRaw(request);
            check(
                sameAnswer(format, pooled, expected, rtol),
                name + ": pooled answer " + round + " differs:\n  got      "
                    + show(format, pooled) + "\n  expected " + show(format, expected));
          }
          if (format.isThrift()) {
            thriftRoundTrip(name, format, pool, request, expected, rtol);
          }
        }
        check(pool.replacements() == 0, format.cliName + ": no worker was replaced");
      }
    }
  }

  /**
   * A stored answer's explanations, if it has any, read by the host from each format: the same
   * {@link Explanation}s (the files hold one answer, so even a numbers_rtol case's are exact),
   * one per detection.
   */
  private boolean explainedAlike(Path vector) throws IOException, TException {
    String name = vector.getFileName().toString();
    Map<?, ?> root =
        MiniJson.object(MiniJson.parse(Files.readAllBytes(vector.resolve("response.json"))), name);
    if (!(root.get("detect") instanceof Map<?, ?> detect) || !detect.containsKey("explanations")) {
      return false;
    }
    List<Explanation> json = Explanation.fromJson(detect.get("explanations"));
    check(
        json != null && json.size() == JsonTrainedWire.longs(detect.get("timestamps")).length,
        name + ": not one explanation per detection: " + json);
    for (WireFormat format : List.of(WireFormat.THRIFT_BINARY, WireFormat.THRIFT_COMPACT)) {
      byte[] bytes = Files.readAllBytes(vector.resolve("response." + format.cliName));
      List<Explanation> thrift =
          Explanation.fromThrift(format.decode(new Response(), bytes).getDetect());
      check(
          java.util.Objects.equals(thrift, json),
          name + " " + format.cliName + ": explanations " + thrift + " vs JSON's " + json);
    }
    return true;
  }

  /** Java's own encoding agrees with Python's, and the typed API raises the right exception. */
  private void thriftRoundTrip(
      String name,
      WireFormat format,
      WorkerPool pool,
      byte[] requestBytes,
      byte[] responseBytes,
      double rtol)
      throws TException {
    Request request = format.decode(new Request(), requestBytes);
    sortDimensions(request);
    check(
        java.util.Arrays.equals(format.encode(request), requestBytes),
        name + ": Java re-encodes the request to other bytes");
    if (request.isSetDetect() && request.getDetect().isSetValues_packed()) {
      java.nio.ByteBuffer packed = request.getDetect().bufferForValues_packed();
      double[] values = PackedArrays.doubles(packed);
      check(PackedArrays.pack(values).equals(packed), name + ": PackedArrays round trip");
      check(java.util.Arrays.stream(values).anyMatch(Double::isNaN), name + ": NaN survives packing");
    }
    Response expected = format.decode(new Response(), responseBytes);
    sortContexts(expected);
    check(
        java.util.Arrays.equals(format.encode(expected), responseBytes),
        name + ": Java re-encodes the response to other bytes");
    try {
      Response answer = pool.call(request);
      check("ok".equals(expected.getStatus()), name + ": typed call succeeded, expected an error");
      check(
          answer.equals(expected)
              || rtol > 0 && RoundedText.differences(answer.toString(), expected.toString(), rtol)
                  .isEmpty(),
          name + ": typed answer differs: " + answer);
    } catch (WardenException error) {
      ErrorCode code = expected.getError() == null ? null : expected.getError().getCode();
      check(error.code() == code, name + ": typed call raised " + error.code() + ", expected " + code);
      check(
          error.getClass().getSimpleName().equals(expectedClass(code)),
          name + ": raised " + error.getClass().getSimpleName() + " for " + code);
      check(
          java.util.Objects.equals(error.requestId(), expected.getRequest_id()),
          name + ": exception carries request id " + error.requestId());
    }
  }

  /**
   * The vector's {@code numbers_rtol} (case.json), or 0: a case whose numbers depend on the
   * processor in their last bits (prophet's) is compared up to that relative tolerance.
   */
  private static double numbersRtol(Path vector) throws IOException {
    Object tolerance =
        MiniJson.object(MiniJson.parse(Files.readAllBytes(vector.resolve("case.json"))), "case")
            .get("numbers_rtol");
    return tolerance instanceof java.math.BigDecimal value ? value.doubleValue() : 0.0;
  }

  /** The stored bytes, or with a tolerance the same document up to the last bits of floats. */
  private static boolean sameAnswer(WireFormat format, byte[] got, byte[] expected, double rtol) {
    if (java.util.Arrays.equals(got, expected)) {
      return true;
    }
    return rtol > 0
        && RoundedText.differences(show(format, got), show(format, expected), rtol).isEmpty();
  }

  private static String expectedClass(ErrorCode code) {
    StringBuilder name = new StringBuilder();
    for (String part : String.valueOf(code).toLowerCase(java.util.Locale.ROOT).split("_")) {
      name.append(Character.toUpperCase(part.charAt(0))).append(part.substring(1));
    }
    return name.toString();
  }

  /** Thrift's Java maps are HashMaps; the IDL's rule 5 says map keys are written sorted. */
  private static void sortDimensions(Request request) {
    if (request.isSetRca()) {
      RcaPayload rca = request.getRca();
      sortDimensions(rca.getMetric_of_interest());
      if (rca.isSetRelated_metrics()) {
        rca.getRelated_metrics().forEach(HarnessTests::sortDimensions);
      }
    }
  }

  private static void sortDimensions(TimeSeries series) {
    if (series != null && series.isSetDimensions()) {
      series.setDimensions(new TreeMap<>(series.getDimensions()));
    }
  }

  /** The same for an answer's maps: each explanation's context (a seasonal model's periods). */
  private static void sortContexts(Response response) {
    if (response.isSetDetect() && response.getDetect().isSetExplanations()) {
      for (warden.algos.thrift.Explanation one : response.getDetect().getExplanations()) {
        if (one.isSetContext()) {
          one.setContext(new TreeMap<>(one.getContext()));
        }
      }
    }
  }

  private static String show(WireFormat format, byte[] bytes) {
    if (!format.isThrift()) {
      return new String(bytes, StandardCharsets.UTF_8);
    }
    try {
      return format.decode(new Response(), bytes).toString();
    } catch (TException e) {
      return bytes.length + " undecodable bytes";
    }
  }

  // ------------------------------------------------------------------------------ concurrency

  /** 4 threads x 1,000 requests through 2 workers; every answer is checked against its input. */
  private void concurrency() throws Exception {
    int threads = 4;
    int perThread = 1000;
    try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 2, GENEROUS)) {
      ExecutorService callers = Executors.newFixedThreadPool(threads);
      List<Future<List<String>>> results = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int thread = t;
        results.add(callers.submit(() -> callMany(pool, thread, perThread)));
      }
      int answered = 0;
      for (Future<List<String>> result : results) {
        List<String> problems = result.get();
        answered += perThread;
        problems.stream().limit(5).forEach(p -> check(false, p));
        check(problems.isEmpty(), problems.size() + " wrong answers in one thread");
      }
      callers.shutdown();
      check(answered == threads * perThread, "every request answered");
      check(pool.replacements() == 0, "no worker replaced: " + pool.replacements());
    }
  }

  private static List<String> callMany(WorkerPool pool, int thread, int count) {
    List<String> problems = new ArrayList<>();
    Random random = new Random(thread);
    for (int i = 0; i < count; i++) {
      String id = "t" + thread + "-" + i;
      int spikeAt = 100 + random.nextInt(90);
      boolean unknown = i % 10 == 9; // every tenth request is an error the pool must survive
      Request request = spikeRequest(unknown ? "no_such_algorithm" : "ksigma", id, 200, spikeAt, random);
      try {
        Response response = pool.call(request);
        if (unknown) {
          problems.add(id + ": unknown algorithm answered ok");
          continue;
        }
        List<Long> anomalies = response.getDetect().getTimestamps();
        if (!id.equals(response.getRequest_id())) {
          problems.add(id + ": answer carries request id " + response.getRequest_id());
        } else if (!anomalies.contains(T0 + 60L * spikeAt)) {
          problems.add(id + ": spike at " + spikeAt + " not found in " + anomalies);
        } else if (response.getDetect().getExpected().size() != 200) {
          problems.add(id + ": band of " + response.getDetect().getExpected().size() + " points");
        }
      } catch (WardenException.UnknownAlgorithm e) {
        if (!unknown || !id.equals(e.requestId())) {
          problems.add(id + ": unexpected " + e.getMessage());
        }
      } catch (WardenException e) {
        problems.add(id + ": " + e.getMessage());
      }
    }
    return problems;
  }

  static Request spikeRequest(String algorithm, String id, int n, int spikeAt, Random random) {
    List<Long> times = new ArrayList<>(n);
    List<Double> values = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      times.add(T0 + 60L * i);
      values.add(100 + 5 * Math.sin(i / 5.0) + random.nextGaussian() + (i == spikeAt ? 60 : 0));
    }
    return new Request()
        .setInterface_name("detect")
        .setAlgorithm(algorithm)
        .setParams_json("{\"window\": 30, \"k\": 5.0}")
        .setRequest_id(id)
        .setDetect(
            new DetectPayload().setDimensions(List.of("host=jvm")).setTimestamps(times).setValues(values));
  }

  private static Request sleepRequest(String algorithm, double seconds, String id) {
    return spikeRequest(algorithm, id, 10, 5, new Random(0))
        .setParams_json("{\"seconds\": " + seconds + "}");
  }

  private boolean answersNormally(WorkerPool pool, String what) {
    try {
      Response response = pool.call(spikeRequest("ksigma", "after", 200, 150, new Random(1)));
      check(response.getDetect().getTimestamps().contains(T0 + 60L * 150), what + ": wrong answer");
      return true;
    } catch (WardenException e) {
      check(false, what + ": " + e.getMessage());
      return false;
    }
  }

  // ---------------------------------------------------------------------------- worker killed

  /** A worker killed mid-request: the caller gets WorkerDied, the pool replaces it and goes on. */
  private void workerKilled() throws Exception {
    try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 1, GENEROUS)) {
      answersNormally(pool, "before");
      long victim = pool.workerPids().get(0);
      Thread killer =
          new Thread(
              () -> {
                sleep(500);
                ProcessHandle.of(victim).ifPresent(ProcessHandle::destroyForcibly);
              });
      killer.start();
      long start = System.nanoTime();
      try {
        pool.call(sleepRequest("test_sleep", 20, "doomed"));
        check(false, "a killed worker still answered");
      } catch (WardenException.WorkerDied e) {
        double seconds = (System.nanoTime() - start) / 1e9;
        check(seconds < 5, "the death was noticed after " + seconds + " s");
        check(e.code() == ErrorCode.INTERNAL, "WorkerDied carries INTERNAL");
        System.out.println("killed mid-request -> " + e.getMessage().lines().findFirst().orElse(""));
      }
      killer.join();
      check(pool.replacements() == 1, "one replacement, saw " + pool.replacements());
      check(pool.workerPids().get(0) != victim, "a new process took the killed one's place");
      answersNormally(pool, "after the kill");

      long idleVictim = pool.workerPids().get(0);
      ProcessHandle.of(idleVictim)
          .ifPresent(
              h -> {
                h.destroyForcibly();
                h.onExit().join();
              });
      answersNormally(pool, "after an idle worker died");
      check(pool.replacements() == 2, "the dead idle worker was replaced before use");

      pool.call(sleepRequest("test_sleep", 0.01, "warm")); // a fresh worker is ready
      long crasher = pool.workerPids().get(0);
      try {
        pool.call(
            spikeRequest("test_crash", "exits", 10, 5, new Random(0)).setParams_json("{\"mode\": \"hard_exit\"}"));
        check(false, "an algorithm that exits the process still got an answer");
      } catch (WardenException.WorkerDied e) {
        check(e.getMessage().contains("exited with status 70"), "says how it died: " + e.getMessage());
      }
      check(pool.workerPids().get(0) != crasher, "the crashed worker was replaced");
      answersNormally(pool, "after an algorithm killed its worker");
    }
  }

  // --------------------------------------------------------------------------------- deadline

  /** The host deadline kills and replaces; the executable's own --timeout-s keeps the worker. */
  private void deadline() throws Exception {
    try (WorkerPool pool =
        new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 1, Duration.ofSeconds(1))) {
      answersNormally(pool, "warm-up");
      long slow = pool.workerPids().get(0);
      long start = System.nanoTime();
      try {
        pool.call(sleepRequest("test_sleep", 30, "too-slow"));
        check(false, "a 30 s request answered within a 1 s deadline");
      } catch (WardenException.DeadlineExceeded e) {
        double seconds = (System.nanoTime() - start) / 1e9;
        check(seconds >= 0.99 && seconds < 3, "deadline fired after " + seconds + " s");
        check(e instanceof WardenException.Timeout, "DeadlineExceeded is a Timeout");
        System.out.printf("host deadline 1 s -> DeadlineExceeded after %.3f s%n", seconds);
      }
      check(pool.workerPids().get(0) != slow, "the late worker was replaced");
      check(pool.replacements() == 1, "one replacement");
      pool.call(sleepRequest("test_sleep", 0.01, "warm"), GENEROUS); // the new worker's start-up
      answersNormally(pool, "after the deadline");
    }

    List<String> saved = new ArrayList<>(options);
    options.addAll(List.of("--timeout-s", "0.3", "--hard-grace-s", "0.5"));
    try (WorkerPool pool = new WorkerPool(executable(WireFormat.THRIFT_COMPACT), 1, GENEROUS)) {
      answersNormally(pool, "warm-up");
      long pid = pool.workerPids().get(0);
      for (String algorithm : List.of("test_sleep", "test_stubborn")) {
        long start = System.nanoTime();
        try {
          pool.call(sleepRequest(algorithm, 30, algorithm));
          check(false, algorithm + ": answered ok");
        } catch (WardenException.Timeout e) {
          double seconds = (System.nanoTime() - start) / 1e9;
          check(!(e instanceof WardenException.DeadlineExceeded), algorithm + ": the worker answered TIMEOUT");
          check(algorithm.equals(e.requestId()), algorithm + ": TIMEOUT carries the request id");
          check(seconds < 5, algorithm + ": TIMEOUT after " + seconds + " s");
          System.out.printf("--timeout-s 0.3, %s -> TIMEOUT after %.3f s%n", algorithm, seconds);
        }
        answersNormally(pool, "after " + algorithm);
      }
      // test_stubborn ignores the soft alarm: the worker re-executes itself in place (same pid)
      check(pool.workerPids().get(0) == pid, "the executable's own timeouts keep the worker's pid");
      check(pool.replacements() == 0, "no host-side replacement");
    } finally {
      options.clear();
      options.addAll(saved);
    }
  }

  // -------------------------------------------------------------------------- malformed frame

  /** Garbage, empty and half-formed requests get structured errors; the worker keeps serving. */
  private void malformedFrame() throws Exception {
    for (WireFormat format : WireFormat.values()) {
      try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
        long pid = pool.workerPids().get(0);
        List<byte[]> bad =
            List.of(
                new byte[0],
                "\u0000\u0001 not a request \u00ff".getBytes(StandardCharsets.ISO_8859_1),
                "{\"interface\": \"detect\", \"algorithm\": ".getBytes(StandardCharsets.UTF_8));
        for (byte[] body : bad) {
          byte[] answer = pool.callRaw(body);
          check(
              errorCode(format, answer) == ErrorCode.INVALID_INPUT,
              format.cliName + ": " + body.length + " bad bytes answered " + show(format, answer));
        }
        if (format.isThrift()) {
          try {
            pool.call(new Request().setInterface_name("detect").setRequest_id("no-algorithm"));
            check(false, "a request without an algorithm succeeded");
          } catch (WardenException.InvalidInput e) {
            check("no-algorithm".equals(e.requestId()), "InvalidInput carries the request id");
            System.out.println(format.cliName + ": " + e.getMessage());
          }
          answersNormally(pool, format.cliName + " after bad frames");
        } else {
          byte[] ok = pool.callRaw("{\"interface\":\"detect\",\"algorithm\":\"ksigma\",\"detect\":{\"dimensions\":[],\"timestamps\":[1,2,3],\"values\":[1.0,2.0,3.0]}}".getBytes(StandardCharsets.UTF_8));
          check(new String(ok, StandardCharsets.UTF_8).startsWith("{\"status\":\"ok\""), "json after bad frames");
        }
        check(pool.workerPids().get(0) == pid, format.cliName + ": same worker throughout");
      }
    }
  }

  private static ErrorCode errorCode(WireFormat format, byte[] answer) throws TException {
    if (format.isThrift()) {
      Response response = format.decode(new Response(), answer);
      return response.isSetError() ? response.getError().getCode() : null;
    }
    String text = new String(answer, StandardCharsets.UTF_8);
    for (ErrorCode code : ErrorCode.values()) {
      if (text.contains("\"code\":\"" + code.name() + "\"")) {
        return code;
      }
    }
    return null;
  }

  // ----------------------------------------------------------------------------- huge request

  /** 200 MB of real request (13M points, packed) is refused with a structured error. */
  private void hugeRequest() throws Exception {
    WireFormat format = WireFormat.THRIFT_COMPACT;
    int points = 200 * 1024 * 1024 / 16;
    ByteBuffer times = ByteBuffer.allocate(points * 8).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer values = ByteBuffer.allocate(points * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < points; i++) {
      times.putLong(T0 + i);
      values.putDouble(i % 100);
    }
    times.flip();
    values.flip();
    byte[] body =
        format.encode(
            new Request()
                .setInterface_name("detect")
                .setAlgorithm("ksigma")
                .setRequest_id("huge")
                .setDetect(
                    new DetectPayload()
                        .setDimensions(List.of("host=huge"))
                        .setTimestamps_packed(times)
                        .setValues_packed(values)));
    System.out.printf("request of %.1f MB%n", body.length / 1e6);
    check(body.length > 200_000_000, "the request is over 200 MB");

    try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
      long pid = pool.workerPids().get(0);
      long start = System.nanoTime();
      byte[] answer = pool.callRaw(body);
      Response response = format.decode(new Response(), answer);
      System.out.printf(
          "serve: refused in %.3f s: %s%n", (System.nanoTime() - start) / 1e9, response.getError());
      check(response.isSetError() && response.getError().getCode() == ErrorCode.INVALID_INPUT,
          "serve answers INVALID_INPUT: " + response);
      check(response.getError().getMessage().contains("exceeds the limit"), "says the limit");
      answersNormally(pool, "after the huge request");
      check(pool.workerPids().get(0) == pid, "the same worker goes on serving");
    }

    long start = System.nanoTime();
    try {
      byte[] answer = new OneShotInvoker(executable(format)).invokeRaw(body, GENEROUS);
      Response response = format.decode(new Response(), answer);
      System.out.printf(
          "one-shot: refused in %.3f s: %s%n", (System.nanoTime() - start) / 1e9, response.getError());
      check(response.isSetError() && response.getError().getCode() == ErrorCode.INVALID_INPUT,
          "one-shot answers INVALID_INPUT: " + response);
    } catch (WardenException e) {
      check(false, "one-shot huge request: " + e.getMessage());
    }
  }

  // -------------------------------------------------------------------------------- rca graph

  private static final String GRAPH_ECHO = "test_graph_echo";
  private static final String TOTAL = "metric=total";
  private static final String A = "metric=a";
  private static final String B = "metric=b";
  private static final String C = "metric=c";
  private static final int GRAPH_POINTS = 30;
  /** a feeds b and c, b feeds c: test_graph_echo, which scores a metric by its parents, ranks c. */
  private static final List<String[]> CHAIN = edges(A, B, A, C, B, C);

  /**
   * An RCA request's dependency graph from the JVM, in every format through one serve worker
   * each. test_graph_echo (an installed test plugin scoring each related metric by its parents in
   * the graph it read) answers what was sent, the right way round; deviation answers with a graph
   * as without one; a cycle, a self-loop, an unknown key, an edge without its child and 100,001
   * edges are INVALID_INPUT naming their field (the typed API's InvalidInput carries it), and the
   * same worker answers on.
   */
  private void rcaGraph() throws TException {
    List<String[]> reversed = CHAIN.stream().map(e -> new String[] {e[1], e[0]}).toList();
    List<String[]> tooMany = java.util.Collections.nCopies(100_001, new String[] {A, B});
    Map<String, List<String[]>> bad = new java.util.LinkedHashMap<>();
    bad.put("rca.graph", edges(A, B, B, C, C, A));
    bad.put("rca.graph[0]", edges(B, B));
    bad.put("rca.graph[1].parent", edges(A, B, "metric=zz", C));
    bad.put("rca.graph[0].child", edges(A, null));
    for (WireFormat format : WireFormat.values()) {
      String name = format.cliName;
      try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
        long pid = pool.workerPids().get(0);
        List<String> chain = ranked(format, pool.callRaw(graphBody(format, GRAPH_ECHO, CHAIN)));
        check(
            chain.equals(List.of(C + " 2.0", B + " 1.0", A + " 0.0")),
            name + ": test_graph_echo read another graph: " + chain);
        List<String> turned = ranked(format, pool.callRaw(graphBody(format, GRAPH_ECHO, reversed)));
        check(
            turned.equals(List.of(A + " 2.0", B + " 1.0", C + " 0.0")),
            name + ": the reversed graph read as " + turned);
        List<String> none = ranked(format, pool.callRaw(graphBody(format, GRAPH_ECHO, null)));
        check(
            none.equals(List.of(A + " -1.0", B + " -1.0", C + " -1.0")),
            name + ": without a graph the plugin read one: " + none);
        List<String> with = ranked(format, pool.callRaw(graphBody(format, "deviation", CHAIN)));
        List<String> without = ranked(format, pool.callRaw(graphBody(format, "deviation", null)));
        check(
            !with.isEmpty() && with.equals(without) && with.stream().allMatch(s -> s.startsWith("metric=")),
            name + ": deviation answered " + with + " with the graph, " + without + " without");
        for (Map.Entry<String, List<String[]>> one : bad.entrySet()) {
          badGraph(format, pool, one.getValue(), one.getKey());
        }
        badGraph(format, pool, tooMany, "rca.graph");
        check(pool.workerPids().get(0) == pid, name + ": one worker throughout");
        check(pool.replacements() == 0, name + ": no worker replaced");
        System.out.println("rca graph " + name + ": " + CHAIN.size() + " edges -> " + chain);
      }
    }
  }

  /** Edges from their ends: parent, child, parent, child, ... (a null child is left unset). */
  private static List<String[]> edges(String... ends) {
    List<String[]> out = new ArrayList<>();
    for (int i = 0; i < ends.length; i += 2) {
      out.add(new String[] {ends[i], ends[i + 1]});
    }
    return out;
  }

  /** A bad graph is INVALID_INPUT at {@code field}; then the worker answers the chain again. */
  private void badGraph(WireFormat format, WorkerPool pool, List<String[]> graph, String field)
      throws TException {
    String what = format.cliName + " " + field + " (" + graph.size() + " edges)";
    String[] error = error(format, pool.callRaw(graphBody(format, GRAPH_ECHO, graph)));
    check(
        "INVALID_INPUT".equals(error[0]) && field.equals(error[1]),
        what + ": answered " + Arrays.toString(error));
    if (format.isThrift() && graph.size() < 100) {
      try {
        pool.call(graphRequest(GRAPH_ECHO, graph));
        check(false, what + ": the typed call succeeded");
      } catch (WardenException.InvalidInput e) {
        check(field.equals(e.field()), what + ": InvalidInput names " + e.field());
        check("graph".equals(e.requestId()), what + ": InvalidInput carries " + e.requestId());
      }
    }
    List<String> after = ranked(format, pool.callRaw(graphBody(format, GRAPH_ECHO, CHAIN)));
    check(after.equals(List.of(C + " 2.0", B + " 1.0", A + " 0.0")), what + ": then " + after);
  }

  /** The request in {@code format}'s bytes: Thrift from the typed request, JSON by hand. */
  private static byte[] graphBody(WireFormat format, String algorithm, List<String[]> graph) {
    if (format.isThrift()) {
      return format.encode(graphRequest(algorithm, graph));
    }
    StringBuilder out =
        new StringBuilder("{\"interface\":\"rca\",\"algorithm\":")
            .append(MiniJson.quote(algorithm))
            .append(",\"request_id\":\"graph\",\"rca\":{\"metric_of_interest\":");
    jsonSeries(out, "total", 0).append(",\"related_metrics\":[");
    jsonSeries(out, "a", 1).append(',');
    jsonSeries(out, "b", 2).append(',');
    jsonSeries(out, "c", 3).append("],\"k\":3,\"anomalies\":[").append(T0 + 60L * 20).append(']');
    if (graph != null) {
      out.append(",\"graph\":[");
      for (int i = 0; i < graph.size(); i++) {
        String[] edge = graph.get(i);
        out.append(i == 0 ? "{" : ",{").append("\"parent\":").append(MiniJson.quote(edge[0]));
        if (edge[1] != null) {
          out.append(",\"child\":").append(MiniJson.quote(edge[1]));
        }
        out.append('}');
      }
      out.append(']');
    }
    return out.append("}}").toString().getBytes(StandardCharsets.UTF_8);
  }

  /**
   * An RCA request as a platform's own code would build it: a total and three related metrics,
   * with the dependency edges the platform knows, each (parent, child): a change of the parent
   * propagates to the child. A null child is left unset, as a buggy host might.
   */
  static Request graphRequest(String algorithm, List<String[]> graph) {
    RcaPayload rca =
        new RcaPayload()
            .setMetric_of_interest(graphSeries("total", 0))
            .setRelated_metrics(List.of(graphSeries("a", 1), graphSeries("b", 2), graphSeries("c", 3)))
            .setK(3)
            .setAnomalies(List.of(T0 + 60L * 20));
    if (graph != null) {
      List<GraphEdge> edges = new ArrayList<>(graph.size());
      for (String[] edge : graph) {
        GraphEdge one = new GraphEdge().setParent(edge[0]);
        edges.add(edge[1] == null ? one : one.setChild(edge[1]));
      }
      rca.setGraph(edges);
    }
    return new Request()
        .setInterface_name("rca")
        .setAlgorithm(algorithm)
        .setRequest_id("graph")
        .setRca(rca);
  }

  private static TimeSeries graphSeries(String metric, int seed) {
    Random random = new Random(seed);
    List<Long> times = new ArrayList<>(GRAPH_POINTS);
    List<Double> values = new ArrayList<>(GRAPH_POINTS);
    for (int i = 0; i < GRAPH_POINTS; i++) {
      times.add(T0 + 60L * i);
      values.add(10 + random.nextGaussian() + (i == 20 && seed == 1 ? 8 : 0));
    }
    return new TimeSeries().setDimensions(Map.of("metric", metric)).setTimes(times).setValues(values);
  }

  private static StringBuilder jsonSeries(StringBuilder out, String metric, int seed) {
    TimeSeries series = graphSeries(metric, seed);
    out.append("{\"dimensions\":{\"metric\":").append(MiniJson.quote(metric)).append("},\"times\":");
    out.append(series.getTimes().toString().replace(" ", "")).append(",\"values\":");
    return out.append(series.getValues().toString().replace(" ", "")).append('}');
  }

  /** An RCA answer's contributions in their order, as "key score"; an error as "CODE field". */
  private static List<String> ranked(WireFormat format, byte[] answer) throws TException {
    List<String> out = new ArrayList<>();
    if (format.isThrift()) {
      Response response = format.decode(new Response(), answer);
      if (response.isSetError()) {
        return List.of(response.getError().getCode() + " " + response.getError().getField());
      }
      for (warden.algos.thrift.Contribution one : response.getRca().getContributions()) {
        out.add(one.getKey() + " " + one.getScore());
      }
      return out;
    }
    Map<?, ?> root = MiniJson.object(MiniJson.parse(answer), "the response");
    if (root.get("error") instanceof Map<?, ?> error) {
      return List.of(error.get("code") + " " + error.get("field"));
    }
    Map<?, ?> rca = MiniJson.object(root.get("rca"), "rca");
    for (Map.Entry<?, ?> one : MiniJson.object(rca.get("contributions"), "contributions").entrySet()) {
      out.add(one.getKey() + " " + ((java.math.BigDecimal) one.getValue()).doubleValue());
    }
    return out;
  }

  // ----------------------------------------------------------------------------------- matrix

  private static final List<String> COLUMNS = List.of("inlet", "outlet", "return");
  private static final List<String> DIMENSIONS = List.of("host=jvm", "unit=pump");
  private static final String SVM = "one_class_svm";
  private static final String SVM_PARAMS = "{\"sigmas\": 6.0}";
  private static final int MATRIX_ROWS = 1200;
  private static final int FIT_ROWS = 1000;
  private static final int SPIKE_ROW = 1100;
  private static final int SPIKE_COLUMN = 1;
  private static final long STEP = 300;

  /**
   * Three correlated columns following one daily sine (a row every 5 minutes), small noise, one
   * missing cell, and one spike in one column ({@code outlet}) well after the first 1,000 rows.
   */
  private static Matrix machine() {
    Random random = new Random(7);
    long[] times = new long[MATRIX_ROWS];
    double[][] rows = new double[MATRIX_ROWS][];
    for (int i = 0; i < MATRIX_ROWS; i++) {
      times[i] = T0 + STEP * i;
      double day = Math.sin(i * 2 * Math.PI / 288);
      rows[i] =
          new double[] {
            10 + day + 0.05 * random.nextGaussian(),
            5 + 2 * day + 0.05 * random.nextGaussian(),
            20 - day + 0.05 * random.nextGaussian()
          };
    }
    rows[SPIKE_ROW][SPIKE_COLUMN] += 3.0;
    rows[1050][0] = Double.NaN;
    return Matrix.of(times, COLUMNS, rows);
  }

  /** One way to call: a format, lists or packed, and what that way answered. */
  private record MatrixRun(
      String label,
      MatrixScored stateless,
      String fitted,
      MatrixScored streamed,
      String streamedState,
      MatrixScored oneCall,
      String oneCallState) {}

  /**
   * one_class_svm on a 3-column matrix, in JSON, thrift-binary and thrift-compact, lists and
   * packed, through a serve worker: a stateless detect of all 1,200 rows; a fit on the first
   * 1,000, the other 200 streamed with the state (by reference, in chunks and row by row, a
   * re-delivered run of rows dropped) and the same 200 in one call with the state's bytes; one
   * one-shot call with the bytes. Every way gives the same detections, scores, contributions and
   * states; contributions are shares summing to 1 and the spike blames its column; a ragged or
   * mis-sized matrix, a matrix to ksigma, and a state asked about other columns are structured
   * errors, after which the same worker answers as before.
   */
  private void matrix() {
    Matrix machine = machine();
    long spike = T0 + STEP * SPIKE_ROW;
    List<MatrixRun> runs = new ArrayList<>();
    for (WireFormat format : WireFormat.values()) {
      try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
        long pid = pool.workerPids().get(0);
        MatrixDetector packed = MatrixDetector.pooled(pool, GENEROUS);
        for (MatrixDetector detector : List.of(packed, packed.withLists())) {
          String label = format.cliName + (detector == packed ? " packed" : " lists");
          runs.add(matrixRun(label, detector, machine, spike));
        }
        matrixErrors(format, pool, packed, machine, runs.get(0));
        check(pool.workerPids().get(0) == pid, format.cliName + ": one worker throughout");
        check(pool.replacements() == 0, format.cliName + ": no worker replaced");
      }
    }
    MatrixRun first = runs.get(0);
    OneShotInvoker invoker = new OneShotInvoker(executable(WireFormat.THRIFT_BINARY));
    MatrixDetector oneShot = MatrixDetector.oneShot(invoker, GENEROUS).withLists();
    TrainedModel model = oneShot.fit(SVM, SVM_PARAMS, DIMENSIONS, machine.slice(0, FIT_ROWS));
    check(model.sha256().equals(first.fitted()), "one-shot thrift-binary: the same fitted state");
    MatrixScored bytes = oneShot.detect(model, machine.slice(FIT_ROWS, MATRIX_ROWS));
    sameScored("one-shot thrift-binary lists, one call with the state", bytes, first.oneCall());
    check(
        bytes.next().sha256().equals(first.oneCallState()),
        "one-shot thrift-binary: the same state after");
    for (MatrixRun run : runs) {
      String versus = run.label() + " vs " + first.label();
      sameScored(versus + ", stateless", run.stateless(), first.stateless());
      sameScored(versus + ", streamed", run.streamed(), first.streamed());
      sameScored(versus + ", one call with the state", run.oneCall(), first.oneCall());
      check(run.fitted().equals(first.fitted()), versus + ": another fitted state");
      check(run.streamedState().equals(first.streamedState()), versus + ": another state after");
      check(run.oneCallState().equals(first.oneCallState()), versus + ": another one-call state");
    }
    sameScored("streamed vs one call", first.streamed(), first.oneCall());
    check(
        first.streamedState().equals(first.oneCallState()),
        "streaming leaves the state one call does");
    System.out.printf(
        "matrix: %d ways agree: %d detections stateless, %d streamed, the spike's shares %s%n",
        runs.size(), first.stateless().anomalies().length, first.streamed().anomalies().length,
        shares(first.streamed(), spike));
  }

  private MatrixRun matrixRun(String label, MatrixDetector detector, Matrix machine, long spike) {
    MatrixScored stateless = detector.detect(SVM, SVM_PARAMS, DIMENSIONS, machine);
    checkShares(label + " stateless", stateless, machine.rowCount(), spike);

    MatrixStream stream =
        detector.fitStream(SVM, SVM_PARAMS, DIMENSIONS, machine.slice(0, FIT_ROWS));
    TrainedModel fitted = stream.model();
    check(
        fitted.seen().points() == FIT_ROWS
            && fitted.seen().end().getAsLong() == T0 + STEP * (FIT_ROWS - 1),
        label + ": the fit saw " + fitted.seen());
    // 990..1060 (the first 10 rows re-delivered: dropped), 1060..1090, then row by row around the
    // spike, then the rest at once
    List<MatrixScored> parts = new ArrayList<>();
    parts.add(stream.next(machine.slice(FIT_ROWS - 10, 1060)));
    parts.add(stream.next(machine.slice(1060, 1090)));
    for (int row = 1090; row < 1110; row++) {
      parts.add(stream.next(machine.slice(row, row + 1)));
    }
    check(
        stream.next(machine.slice(1100, 1110)).times().length == 0,
        label + ": rows the state has seen are not sent again");
    parts.add(stream.next(machine.slice(1110, MATRIX_ROWS)));
    MatrixScored streamed = joined(parts);
    check(
        streamed.times().length == MATRIX_ROWS - FIT_ROWS,
        label + ": streamed " + streamed.times().length + " rows");
    check(
        stream.stats().calls() == parts.size() && stream.stats().byReference() == parts.size(),
        label + ": every streamed call named the state: " + stream.stats());
    checkShares(label + " streamed", streamed, MATRIX_ROWS - FIT_ROWS, spike);
    TrainedModel after = stream.model();
    check(after.seen().points() == MATRIX_ROWS, label + ": the state after saw " + after.seen());

    MatrixScored oneCall = detector.detect(fitted, machine.slice(FIT_ROWS, MATRIX_ROWS));
    checkShares(label + " one call", oneCall, MATRIX_ROWS - FIT_ROWS, spike);
    return new MatrixRun(
        label, stateless, fitted.sha256(), streamed, after.sha256(), oneCall,
        oneCall.next().sha256());
  }

  /** Every detection's shares: one per column, >= 0, summing to 1; the spike blames its column. */
  private void checkShares(String label, MatrixScored scored, int rows, long spike) {
    check(scored.times().length == rows, label + ": " + scored.times().length + " rows scored");
    check(
        scored.contributions().length == scored.anomalies().length
            && scored.scores().length == scored.anomalies().length,
        label + ": a score and a row of shares per detection");
    for (int i = 0; i < scored.contributions().length; i++) {
      double[] shares = scored.contributions()[i];
      double sum = 0;
      boolean nonNegative = true;
      for (double share : shares) {
        sum += share;
        nonNegative &= share >= 0;
      }
      check(
          shares.length == COLUMNS.size() && nonNegative && Math.abs(sum - 1) <= 1e-9,
          label + ": detection " + i + " has shares " + Arrays.toString(shares));
    }
    check(
        !scored.hasExpected() || scored.expected().length == rows,
        label + ": an expected matrix of another height");
    int at = scored.detectionAt(spike);
    check(at >= 0, label + ": the spike is not among " + Arrays.toString(scored.anomalies()));
    if (at >= 0) {
      check(
          scored.blamed(at).equals(COLUMNS.get(SPIKE_COLUMN)),
          label + ": the spike blames " + scored.blamed(at) + ": " + shares(scored, spike));
    }
  }

  /** Bit for bit the same detections, scores and contributions. */
  private void sameScored(String what, MatrixScored got, MatrixScored want) {
    check(
        Arrays.equals(got.anomalies(), want.anomalies()),
        what + ": detections " + Arrays.toString(got.anomalies()) + " vs "
            + Arrays.toString(want.anomalies()));
    check(
        Arrays.equals(got.scores(), want.scores()),
        what + ": scores " + Arrays.toString(got.scores()) + " vs "
            + Arrays.toString(want.scores()));
    check(
        Arrays.deepEquals(got.contributions(), want.contributions()),
        what + ": contributions " + Arrays.deepToString(got.contributions()) + " vs "
            + Arrays.deepToString(want.contributions()));
    check(
        Arrays.deepEquals(got.expected(), want.expected()),
        what + ": another expected matrix");
  }

  private static String shares(MatrixScored scored, long time) {
    int at = scored.detectionAt(time);
    return at < 0 ? "(none)" : COLUMNS + "=" + Arrays.toString(scored.contributions()[at]);
  }

  /** The answers of consecutive calls as one. */
  private static MatrixScored joined(List<MatrixScored> parts) {
    List<Long> times = new ArrayList<>();
    List<Long> anomalies = new ArrayList<>();
    List<Double> scores = new ArrayList<>();
    List<double[]> shares = new ArrayList<>();
    List<double[]> expected = new ArrayList<>();
    boolean band = true;
    TrainedModel last = null;
    for (MatrixScored part : parts) {
      for (long t : part.times()) {
        times.add(t);
      }
      for (int i = 0; i < part.anomalies().length; i++) {
        anomalies.add(part.anomalies()[i]);
        scores.add(part.scores()[i]);
        shares.add(part.contributions()[i]);
      }
      band &= part.hasExpected();
      if (part.hasExpected()) {
        expected.addAll(List.of(part.expected()));
      }
      last = part.next();
    }
    return new MatrixScored(
        times.stream().mapToLong(Long::longValue).toArray(), COLUMNS,
        anomalies.stream().mapToLong(Long::longValue).toArray(),
        scores.stream().mapToDouble(Double::doubleValue).toArray(),
        shares.toArray(double[][]::new), band ? expected.toArray(double[][]::new) : null, last);
  }

  /**
   * What the executable refuses, answered as structured errors by the serve worker, which then
   * answers a good request as before: a ragged matrix and a packed one of another width
   * (INVALID_INPUT naming the matrix), a matrix to ksigma (UNKNOWN_ALGORITHM, detect and fit),
   * rows of other columns with a state (INCOMPATIBLE_STATE). Java refuses a ragged matrix itself.
   */
  private void matrixErrors(
      WireFormat format,
      WorkerPool pool,
      MatrixDetector detector,
      Matrix machine,
      MatrixRun reference) {
    String name = format.cliName;
    try {
      Matrix.of(new long[] {T0, T0 + STEP}, List.of("a", "b"), new double[][] {{1, 2}, {3}});
      check(false, "Java made a ragged matrix");
    } catch (IllegalArgumentException e) {
      check(e.getMessage().startsWith("row 1 has 1 values"), "Java says " + e.getMessage());
    }
    try {
      Matrix.of(new long[] {T0}, List.of("a", "b"), new double[][] {{1, 2}, {3, 4}});
      check(false, "Java made a matrix of more rows than times");
    } catch (IllegalArgumentException e) {
      check(e.getMessage().contains("one row per time"), "Java says " + e.getMessage());
    }
    List<byte[]> bad = new ArrayList<>();
    if (format.isThrift()) {
      for (boolean packed : new boolean[] {false, true}) {
        DetectPayload detect =
            new DetectPayload().setColumns(List.of("a", "b")).setTimestamps(List.of(T0, T0 + STEP));
        if (packed) {
          detect.setMatrix_packed(PackedArrays.pack(new double[] {1, 2, 3}));
        } else {
          detect.setMatrix(List.of(List.of(1.0, 2.0), List.of(3.0)));
        }
        bad.add(
            format.encode(
                new Request().setInterface_name("detect").setAlgorithm(SVM).setRequest_id("bad")
                    .setDetect(detect)));
      }
    } else {
      String head =
          "{\"interface\":\"detect\",\"algorithm\":\"" + SVM + "\",\"request_id\":\"bad\","
              + "\"detect\":{\"columns\":[\"a\",\"b\"],\"timestamps\":[" + T0 + ","
              + (T0 + STEP) + "],";
      bad.add((head + "\"matrix\":[[1.0,2.0],[3.0]]}}").getBytes(StandardCharsets.UTF_8));
      String threeCells = Base64.getEncoder().encodeToString(
          PackedArrays.pack(new double[] {1, 2, 3}).array());
      bad.add((head + "\"matrix\":{\"dtype\":\"float64\",\"base64\":\"" + threeCells + "\"}}}")
          .getBytes(StandardCharsets.UTF_8));
    }
    for (int i = 0; i < bad.size(); i++) {
      String what = name + (i == 0 ? " ragged" : " packed of another width");
      byte[] answer = pool.callRaw(bad.get(i));
      String[] error = error(format, answer);
      check(
          "INVALID_INPUT".equals(error[0])
              && error[1] != null
              && error[1].startsWith("detect.matrix"),
          what + ": answered " + show(format, answer));
      System.out.println(what + " -> " + error[0] + " " + error[1]);
    }
    try {
      detector.detect("ksigma", "{}", DIMENSIONS, machine);
      check(false, name + ": ksigma scored a matrix");
    } catch (WardenException.UnknownAlgorithm e) {
      check(e.getMessage().contains("cannot score a matrix"), name + ": " + e.getMessage());
      System.out.println(name + " ksigma detect -> " + e.getMessage());
    }
    try {
      detector.fit("ksigma", "{}", DIMENSIONS, machine);
      check(false, name + ": ksigma fitted a matrix");
    } catch (WardenException.UnknownAlgorithm e) {
      check(e.getMessage().contains("matrix"), name + ": ksigma says " + e.getMessage());
    }
    TrainedModel fitted = detector.fit(SVM, SVM_PARAMS, DIMENSIONS, machine.slice(0, FIT_ROWS));
    Matrix tail = machine.slice(FIT_ROWS, MATRIX_ROWS);
    try {
      List<String> others = List.of("inlet", "outlet", "exhaust");
      detector.detect(fitted, Matrix.of(tail.times(), others, tail.rows()));
      check(false, name + ": a state scored other columns");
    } catch (WardenException.IncompatibleState e) {
      System.out.println(name + " other columns -> " + e.getMessage());
    }
    sameScored(
        name + " after the errors",
        detector.detect(SVM, SVM_PARAMS, DIMENSIONS, machine),
        reference.stateless());
  }

  /** An error answer's code and field (null when absent), in either format. */
  private static String[] error(WireFormat format, byte[] answer) {
    if (format.isThrift()) {
      try {
        warden.algos.thrift.Error error = format.decode(new Response(), answer).getError();
        return error == null
            ? new String[] {null, null}
            : new String[] {String.valueOf(error.getCode()), error.getField()};
      } catch (TException e) {
        return new String[] {null, null};
      }
    }
    Map<?, ?> root = MiniJson.object(MiniJson.parse(answer), "the response");
    if (!(root.get("error") instanceof Map<?, ?> error)) {
      return new String[] {null, null};
    }
    return new String[] {
      error.get("code") instanceof String code ? code : null,
      error.get("field") instanceof String field ? field : null
    };
  }

  // ----------------------------------------------------------------------------- explanations

  private static final String KSIGMA = "ksigma";
  private static final String KSIGMA_PARAMS = "{\"window\": 30, \"k\": 5.0}";
  private static final int SPIKE_POINTS = 200;
  private static final int SPIKE_AT = 150;
  private static final int STATE_POINTS = 400;
  private static final int STATE_FIT = 300;
  private static final int STATE_SPLIT = 340;
  /** Two spikes after the fit: one before the stream's split, one after. */
  private static final int[] STATE_SPIKES = {320, 350};

  /** One way's answer to one question: its detections and their explanations (null: none). */
  private record Explained(String label, long[] anomalies, List<Explanation> explanations) {
    static Explained of(String label, Scored scored) {
      return new Explained(label, scored.anomalies(), scored.explanations());
    }

    static Explained of(String label, MatrixScored scored) {
      return new Explained(label, scored.anomalies(), scored.explanations());
    }
  }

  /** What one format answered, each question asked lists and packed where the host can. */
  private record ExplainedRun(
      List<Explained> spike, Explained oneCall, Explained streamed, List<Explained> matrix) {}

  /**
   * include_explanations in JSON, thrift-binary and thrift-compact, through a serve worker each:
   * a ksigma spike (stateless; lists and packed, the request built by hand and read with {@link
   * Explanation#fromThrift} / the JSON reader), a ksigma fit then a detect with its state (one
   * call with the bytes, and a stream in two calls by reference; packed, as {@link Trainer}
   * always is), and one_class_svm's 3-column matrix with a spike in one column (stateless and
   * with a fitted state; {@link MatrixDetector} lists and packed). Every format and spelling
   * gives the same explanations; one per detection, each peak within its detection's run, its
   * actual the input's value there, a reason; the spike's band units over 1; the matrix spike's
   * first column the spiked one, its shares in (0, 1], descending and the detection's
   * contributions. Without the option no explanations come back and nothing else changes. A
   * stream passing sha256 only, replaying points after a miss, keeps only its new points'
   * explanations; malformed explanations are a broken executable.
   */
  private void explanations() {
    Request spikeRequest = spikeRequest(KSIGMA, "explain", SPIKE_POINTS, SPIKE_AT, new Random(3));
    long[] spikeTimes = ThriftTrainedWire.longs(spikeRequest.getDetect().getTimestamps());
    double[] spikeValues = doubles(spikeRequest.getDetect().getValues());
    long spike = spikeTimes[SPIKE_AT];
    Request stateRequest =
        spikeRequest(KSIGMA, "state", STATE_POINTS, STATE_SPIKES[1], new Random(5));
    long[] stateTimes = ThriftTrainedWire.longs(stateRequest.getDetect().getTimestamps());
    double[] stateValues = doubles(stateRequest.getDetect().getValues());
    stateValues[STATE_SPIKES[0]] -= 60;
    Matrix machine = machine();
    long matrixSpike = T0 + STEP * SPIKE_ROW;

    List<ExplainedRun> runs = new ArrayList<>();
    TrainedModel fittedKsigma = null;
    TrainedModel fitted = null; // the matrix's, fitted once: a state is the same in every format
    for (WireFormat format : WireFormat.values()) {
      try (WorkerPool pool = new WorkerPool(executable(format), 1, GENEROUS)) {
        String name = format.cliName;
        // a ksigma spike, stateless
        List<Explained> spikes = new ArrayList<>();
        for (boolean packed : new boolean[] {false, true}) {
          String label = name + (packed ? " packed" : " lists") + " ksigma spike";
          Explained got = spikeDetect(pool, format, spikeTimes, spikeValues, packed, true, label);
          checkExplained(got, spikeTimes, spikeValues);
          checkSpike(got, spike);
          spikes.add(got);
          Explained plain =
              spikeDetect(pool, format, spikeTimes, spikeValues, packed, false, label);
          check(plain.explanations() == null, label + ": explanations without the option");
          check(
              Arrays.equals(plain.anomalies(), got.anomalies()),
              label + ": the option changed the detections");
        }

        // ksigma fitted, then the points after it with the state
        Trainer trainer = Trainer.pooled(pool, GENEROUS).withExplanations();
        long[] fitTimes = Arrays.copyOfRange(stateTimes, 0, STATE_FIT);
        double[] fitValues = Arrays.copyOfRange(stateValues, 0, STATE_FIT);
        long[] tailTimes = Arrays.copyOfRange(stateTimes, STATE_FIT, STATE_POINTS);
        double[] tailValues = Arrays.copyOfRange(stateValues, STATE_FIT, STATE_POINTS);
        TrainedModel model = trainer.fit(KSIGMA, KSIGMA_PARAMS, DIMENSIONS, fitTimes, fitValues);
        check(
            fittedKsigma == null || fittedKsigma.sha256().equals(model.sha256()),
            name + ": another fitted state");
        fittedKsigma = model;
        Scored oneCall = trainer.detect(model, tailTimes, tailValues);
        Explained explainedCall = Explained.of(name + " ksigma with a state", oneCall);
        checkExplained(explainedCall, stateTimes, stateValues);
        for (int at : STATE_SPIKES) {
          checkSpike(explainedCall, stateTimes[at]);
        }
        Scored plain = Trainer.pooled(pool, GENEROUS).detect(model, tailTimes, tailValues);
        check(!plain.hasExplanations(), name + " ksigma with a state: explained unasked");
        check(
            Arrays.equals(plain.anomalies(), oneCall.anomalies())
                && Arrays.equals(plain.scores(), oneCall.scores()),
            name + " ksigma with a state: the option changed the answer");
        SeriesStream stream =
            trainer.fitStream(KSIGMA, KSIGMA_PARAMS, DIMENSIONS, fitTimes, fitValues);
        Scored first =
            stream.next(
                Arrays.copyOfRange(stateTimes, STATE_FIT, STATE_SPLIT),
                Arrays.copyOfRange(stateValues, STATE_FIT, STATE_SPLIT));
        Scored second =
            stream.next(
                Arrays.copyOfRange(stateTimes, STATE_SPLIT, STATE_POINTS),
                Arrays.copyOfRange(stateValues, STATE_SPLIT, STATE_POINTS));
        check(
            stream.stats().byReference() == 2, name + " stream: by reference: " + stream.stats());
        Explained streamed = joined(name + " ksigma streamed", first, second);
        checkExplained(streamed, stateTimes, stateValues);
        for (int at : STATE_SPIKES) {
          checkSpike(streamed, stateTimes[at]);
        }

        // a matrix, stateless and with a fitted state
        List<Explained> matrices = new ArrayList<>();
        MatrixDetector packedDetector = MatrixDetector.pooled(pool, GENEROUS);
        for (MatrixDetector plainDetector : List.of(packedDetector, packedDetector.withLists())) {
          MatrixDetector detector = plainDetector.withExplanations();
          String label =
              name + (plainDetector == packedDetector ? " packed" : " lists") + " matrix";
          MatrixScored stateless = detector.detect(SVM, SVM_PARAMS, DIMENSIONS, machine);
          if (fitted == null) {
            fitted = detector.fit(SVM, SVM_PARAMS, DIMENSIONS, machine.slice(0, FIT_ROWS));
          }
          Matrix tail = machine.slice(FIT_ROWS, MATRIX_ROWS);
          MatrixScored withState = detector.detect(fitted, tail);
          for (MatrixScored scored : List.of(stateless, withState)) {
            String what = label + (scored == stateless ? "" : " with a state");
            Explained got = Explained.of(what, scored);
            checkExplained(got, machine);
            checkMatrixSpike(got, scored, matrixSpike);
            matrices.add(got);
          }
          if (plainDetector == packedDetector) {
            MatrixScored unasked = plainDetector.detect(fitted, tail);
            check(!unasked.hasExplanations(), label + " with a state: explained unasked");
            check(
                Arrays.equals(unasked.scores(), withState.scores())
                    && Arrays.deepEquals(unasked.contributions(), withState.contributions()),
                label + " with a state: the option changed the answer");
          }
        }
        runs.add(new ExplainedRun(spikes, explainedCall, streamed, matrices));
        check(pool.replacements() == 0, name + ": no worker replaced");
      }
    }
    ExplainedRun reference = runs.get(0);
    int ways = 0;
    for (ExplainedRun run : runs) {
      for (int i = 0; i < run.spike().size(); i++) {
        ways += sameExplained(run.spike().get(i), reference.spike().get(0));
      }
      ways += sameExplained(run.oneCall(), reference.oneCall());
      ways += sameExplained(run.streamed(), reference.streamed());
      for (int i = 0; i < run.matrix().size(); i++) {
        ways += sameExplained(run.matrix().get(i), reference.matrix().get(i % 2));
      }
    }
    explainedReplay(fittedKsigma, stateTimes, stateValues, reference.oneCall());
    malformedExplanations();

    Explanation spiked = explanationAt(reference.spike().get(0), spike);
    Explanation blamed = explanationAt(reference.matrix().get(0), matrixSpike);
    System.out.printf(
        "explanations: %d answers agree: ksigma spike %s, %d with a state, %d streamed; matrix"
            + " %d stateless, %d with a state%n",
        ways,
        spiked == null ? "(none)" : "band_units=" + spiked.bandUnits(),
        reference.oneCall().anomalies().length, reference.streamed().anomalies().length,
        reference.matrix().get(0).anomalies().length, reference.matrix().get(1).anomalies().length);
    System.out.println("ksigma spike reason: " + (spiked == null ? "(none)" : spiked.reason()));
    System.out.println(
        "matrix spike: " + (blamed == null ? "(none)" : blamed.columns() + "=" + blamed.shares()
            + ", reason: " + blamed.reason()));
  }

  /** The stateless ksigma spike, its request built by hand as a platform's own code would. */
  private Explained spikeDetect(
      WorkerPool pool, WireFormat format, long[] times, double[] values, boolean packed,
      boolean explain, String label) {
    if (format.isThrift()) {
      DetectPayload detect = new DetectPayload().setDimensions(List.of("host=jvm"));
      if (packed) {
        detect.setTimestamps_packed(PackedArrays.pack(times))
            .setValues_packed(PackedArrays.pack(values));
      } else {
        detect.setTimestamps(Arrays.stream(times).boxed().toList())
            .setValues(Arrays.stream(values).boxed().toList());
      }
      Request request =
          new Request().setInterface_name("detect").setAlgorithm(KSIGMA)
              .setParams_json(KSIGMA_PARAMS).setRequest_id(label).setDetect(detect);
      if (packed) {
        request.setPacked_arrays(true);
      }
      if (explain) {
        request.setInclude_explanations(true);
      }
      DetectResult result = pool.call(request).getDetect();
      check(result.isSetTimestamps_packed() == packed, label + ": packed answer " + !packed);
      long[] anomalies =
          packed
              ? PackedArrays.longs(result.bufferForTimestamps_packed())
              : ThriftTrainedWire.longs(result.getTimestamps());
      return new Explained(label, anomalies, Explanation.fromThrift(result));
    }
    StringBuilder out =
        JsonTrainedWire.envelope("detect", KSIGMA, KSIGMA_PARAMS, true, packed, explain);
    out.append(",\"request_id\":").append(MiniJson.quote(label))
        .append(",\"detect\":{\"dimensions\":[\"host=jvm\"],\"timestamps\":");
    if (packed) {
      JsonTrainedWire.packed(out, "int64", PackedArrays.pack(times));
      out.append(",\"values\":");
      JsonTrainedWire.packed(out, "float64", PackedArrays.pack(values));
    } else {
      out.append(Arrays.toString(times).replace(" ", "")).append(",\"values\":")
          .append(Arrays.toString(values).replace(" ", ""));
    }
    byte[] answer = pool.callRaw(out.append("}}").toString().getBytes(StandardCharsets.UTF_8));
    return JsonTrainedWire.read(
        answer,
        "detect",
        detect -> {
          check(
              detect.get("timestamps") instanceof Map<?, ?> == packed,
              label + ": packed answer " + !packed);
          return new Explained(
              label,
              JsonTrainedWire.longs(detect.get("timestamps")),
              Explanation.fromJson(detect.get("explanations")));
        });
  }

  /**
   * A sha256-only stream on a worker whose state cache holds one state: its first call leaves
   * the state after it on the worker, another detect evicts it, so the second call misses and
   * resends the fit's bytes with the first call's points (a replay). That answer covers both
   * calls; the stream keeps the second's detections and explanations alone, which are those of
   * one call with the fit's state over all the points (the replay is that call) from the split on.
   */
  private void explainedReplay(
      TrainedModel fitted, long[] times, double[] values, Explained oneCall) {
    List<String> oneState = new ArrayList<>(options);
    oneState.addAll(
        List.of(
            "--state-cache-mb",
            String.format(java.util.Locale.ROOT, "%.6f", 1.5 * fitted.stateSize() / (1 << 20))));
    WireFormat format = WireFormat.THRIFT_COMPACT;
    Executable executable = executable(format).withOptions(oneState.toArray(String[]::new));
    try (WorkerPool pool = new WorkerPool(executable, 1, GENEROUS)) {
      Trainer trainer = Trainer.pooled(pool, GENEROUS).withExplanations();
      SeriesStream stream = trainer.stream(fitted, StatePassing.BY_REFERENCE_SHA256_ONLY);
      Scored first =
          stream.next(
              Arrays.copyOfRange(times, STATE_FIT, STATE_SPLIT),
              Arrays.copyOfRange(values, STATE_FIT, STATE_SPLIT));
      trainer.detect( // another state, in the place of the stream's
          fitted, Arrays.copyOfRange(times, STATE_FIT, STATE_FIT + 1),
          Arrays.copyOfRange(values, STATE_FIT, STATE_FIT + 1));
      Scored second =
          stream.next(
              Arrays.copyOfRange(times, STATE_SPLIT, STATE_POINTS),
              Arrays.copyOfRange(values, STATE_SPLIT, STATE_POINTS));
      String label = format.cliName + " sha256-only replay";
      check(
          stream.stats().replayed() == STATE_SPLIT - STATE_FIT,
          label + ": replayed the first call's points: " + stream.stats());
      check(
          first.anomalies().length > 0 && first.explanations().size() == first.anomalies().length,
          label + ": the first call's " + first.anomalies().length + " detections explained");
      long split = times[STATE_SPLIT];
      List<Long> after = new ArrayList<>();
      List<Explanation> afterExplained = new ArrayList<>();
      for (int i = 0; i < oneCall.anomalies().length; i++) {
        if (oneCall.anomalies()[i] >= split) {
          after.add(oneCall.anomalies()[i]);
          afterExplained.add(oneCall.explanations().get(i));
        }
      }
      sameExplained(
          new Explained(label, second.anomalies(), second.explanations()),
          new Explained(
              "one call from the split on", after.stream().mapToLong(Long::longValue).toArray(),
              afterExplained));
      System.out.println(
          label + " -> " + stream.stats() + ", the second call's " + second.anomalies().length
              + " detections explained as one call's");
    }
  }

  /** Explanations an executable could answer wrongly: a broken executable, never a crash. */
  private void malformedExplanations() {
    Explanation one = new Explanation(
        T0, T0, 1L, 2.0, 1.0, 0.0, 2.0, 2.0, null, null, null, null, "value 2 is 2 band units");
    try {
      Explanation.forDetections(List.of(one, one), 1);
      check(false, "2 explanations for 1 detection accepted");
    } catch (WardenException.WorkerDied e) {
      check(e.getMessage().contains("2 explanations for 1 detections"), e.getMessage());
      System.out.println("explanations of another count -> " + e.getMessage());
    }
    String head =
        "{\"status\":\"ok\",\"detect\":{\"timestamps\":[" + T0 + "],\"scores\":[3.0],"
            + "\"state_sha256\":\"" + "0".repeat(64) + "\",\"explanations\":";
    List<String> badJson =
        List.of(
            "{\"peak\":1}",
            "[{\"peak\":1.5}]",
            "[{\"columns\":[\"a\",\"b\"],\"shares\":[1.0]}]",
            "[{\"context\":{\"periods_s\":86400}}]",
            "[{\"reason\":7}]");
    TrainedWire json = TrainedWire.of(WireFormat.JSON);
    for (String bad : badJson) {
      try {
        json.detectAnswer((head + bad + "}}").getBytes(StandardCharsets.UTF_8));
        check(false, "json explanations " + bad + " accepted");
      } catch (WardenException.WorkerDied e) {
        check(e.getMessage().contains("explanation"), "json " + bad + ": " + e.getMessage());
      }
    }
    String absent = "{\"status\":\"ok\",\"detect\":{\"timestamps\":[],\"scores\":[],"
        + "\"state_sha256\":\"" + "0".repeat(64) + "\"}}";
    check(
        json.detectAnswer(absent.getBytes(StandardCharsets.UTF_8)).explanations() == null,
        "json: absent explanations read as none");
    for (WireFormat format : List.of(WireFormat.THRIFT_BINARY, WireFormat.THRIFT_COMPACT)) {
      DetectResult detect =
          new DetectResult().setTimestamps(List.of(T0)).setScores(List.of(3.0))
              .setState_sha256("0".repeat(64))
              .setExplanations(
                  List.of(
                      new warden.algos.thrift.Explanation()
                          .setColumns(List.of("a", "b")).setShares(List.of(1.0))));
      byte[] bytes = format.encode(new Response().setStatus("ok").setDetect(detect));
      try {
        TrainedWire.of(format).detectAnswer(bytes);
        check(false, format.cliName + ": unpaired columns and shares accepted");
      } catch (WardenException.WorkerDied e) {
        check(e.getMessage().contains("pair up"), format.cliName + ": " + e.getMessage());
        System.out.println(format.cliName + " unpaired columns -> " + e.getMessage());
      }
      detect.unsetExplanations();
      byte[] none = format.encode(new Response().setStatus("ok").setDetect(detect));
      check(
          TrainedWire.of(format).detectAnswer(none).explanations() == null,
          format.cliName + ": absent explanations read as none");
    }
  }

  /**
   * One explanation per detection, in order, each with a reason: its run starts at the detection
   * and ends before the next, the peak within it, the actual the input's value at the peak.
   */
  private void checkExplained(Explained got, long[] times, double[] values) {
    checkRuns(got, times);
    if (got.explanations() == null) {
      return;
    }
    for (Explanation one : got.explanations()) {
      int at = Arrays.binarySearch(times, one.peak() == null ? Long.MIN_VALUE : one.peak());
      check(
          at >= 0 && one.actual() != null && one.actual() == values[at],
          got.label() + ": the actual at the peak is not the value sent: " + one);
    }
  }

  /** The same for a matrix: the actual is the top column's value at the peak. */
  private void checkExplained(Explained got, Matrix matrix) {
    long[] times = matrix.times();
    checkRuns(got, times);
    if (got.explanations() == null) {
      return;
    }
    double[][] rows = matrix.rows();
    for (Explanation one : got.explanations()) {
      int at = Arrays.binarySearch(times, one.peak() == null ? Long.MIN_VALUE : one.peak());
      int column = COLUMNS.indexOf(one.topColumn());
      check(
          at >= 0 && column >= 0 && one.actual() != null && one.actual() == rows[at][column],
          got.label() + ": the actual at the peak is not the top column's value: " + one);
      List<Double> shares = one.shares();
      boolean descending = !shares.isEmpty();
      for (int i = 0; i < shares.size(); i++) {
        descending &= shares.get(i) > 0 && shares.get(i) <= 1;
        descending &= i == 0 || shares.get(i) <= shares.get(i - 1);
        descending &= COLUMNS.contains(one.columns().get(i));
      }
      check(descending, got.label() + ": shares not in (0, 1] and descending: " + one);
    }
  }

  private void checkRuns(Explained got, long[] times) {
    List<Explanation> explained = got.explanations();
    long[] anomalies = got.anomalies();
    check(explained != null, got.label() + ": no explanations");
    if (explained == null) {
      return;
    }
    check(
        explained.size() == anomalies.length,
        got.label() + ": " + explained.size() + " explanations for " + anomalies.length
            + " detections");
    check(anomalies.length > 0, got.label() + ": no detection to explain");
    for (int i = 0; i < Math.min(explained.size(), anomalies.length); i++) {
      Explanation one = explained.get(i);
      long next = i + 1 < anomalies.length ? anomalies[i + 1] : Long.MAX_VALUE;
      check(
          one.peak() != null && one.last() != null && one.points() != null && one.points() >= 1
              && anomalies[i] <= one.peak() && one.peak() <= one.last() && one.last() < next
              && one.last() <= times[times.length - 1],
          got.label() + ": detection " + anomalies[i] + " has a run " + one);
      check(
          !one.reason().isBlank(), got.label() + ": detection " + anomalies[i] + " has no reason");
    }
  }

  /** The spike is a detection of its own run, its peak, more than a band's half-width out. */
  private void checkSpike(Explained got, long spike) {
    Explanation one = explanationAt(got, spike);
    check(one != null, got.label() + ": no detection's run holds the spike at " + spike);
    if (one == null) {
      return;
    }
    check(
        one.peak() == spike
            && one.bandUnits() != null && Math.abs(one.bandUnits()) > 1
            && one.lower() != null && one.upper() != null && one.lower() <= one.upper()
            && (one.bandUnits() > 0) == (one.actual() > one.upper()),
        got.label() + ": the spike is explained as " + one);
  }

  /** The matrix spike: its first column is the spiked one; its shares the detection's. */
  private void checkMatrixSpike(Explained got, MatrixScored scored, long spike) {
    Explanation one = explanationAt(got, spike);
    check(one != null, got.label() + ": no detection's run holds the spike at " + spike);
    if (one == null) {
      return;
    }
    check(
        COLUMNS.get(SPIKE_COLUMN).equals(one.topColumn()),
        got.label() + ": the spike's first column is " + one.topColumn());
    int detection = got.explanations().indexOf(one);
    double[] contributions = scored.contributions()[detection];
    for (int i = 0; i < one.columns().size(); i++) {
      int column = COLUMNS.indexOf(one.columns().get(i));
      check(
          column >= 0 && contributions[column] == one.shares().get(i),
          got.label() + ": share " + one.shares().get(i) + " of " + one.columns().get(i)
              + " is not the detection's " + Arrays.toString(contributions));
    }
  }

  /** The explanation of the detection whose run holds {@code time}, or null. */
  private static Explanation explanationAt(Explained got, long time) {
    if (got.explanations() == null) {
      return null;
    }
    for (int i = 0; i < Math.min(got.anomalies().length, got.explanations().size()); i++) {
      Explanation one = got.explanations().get(i);
      if (got.anomalies()[i] <= time && one.last() != null && time <= one.last()) {
        return one;
      }
    }
    return null;
  }

  /** Bit for bit the same detections and explanations; 1, to count the ways compared. */
  private int sameExplained(Explained got, Explained want) {
    check(
        Arrays.equals(got.anomalies(), want.anomalies()),
        got.label() + " vs " + want.label() + ": detections " + Arrays.toString(got.anomalies())
            + " vs " + Arrays.toString(want.anomalies()));
    check(
        java.util.Objects.equals(got.explanations(), want.explanations()),
        got.label() + " vs " + want.label() + ": explanations " + got.explanations() + " vs "
            + want.explanations());
    return 1;
  }

  private static Explained joined(String label, Scored... parts) {
    List<Long> anomalies = new ArrayList<>();
    List<Explanation> explanations = new ArrayList<>();
    boolean explained = true;
    for (Scored part : parts) {
      for (long t : part.anomalies()) {
        anomalies.add(t);
      }
      explained &= part.hasExplanations();
      if (part.hasExplanations()) {
        explanations.addAll(part.explanations());
      }
    }
    return new Explained(
        label, anomalies.stream().mapToLong(Long::longValue).toArray(),
        explained ? explanations : null);
  }

  private static double[] doubles(List<Double> items) {
    return items.stream().mapToDouble(Double::doubleValue).toArray();
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
