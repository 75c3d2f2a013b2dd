package warden.algos.host;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * How to start the algorithms executable: the command (the console script {@code warden-algos},
 * {@code python -m warden_algos}, or the PyInstaller binary), the wire format, extra options for
 * {@code run}/{@code serve} (e.g. {@code --timeout-s 5}), environment overrides, and where the
 * process's stderr lines (its structured logs) go.
 */
public record Executable(
    List<String> command,
    WireFormat format,
    List<String> options,
    Map<String, String> environment,
    Consumer<String> stderrLines) {

  public Executable {
    if (command.isEmpty()) {
      throw new IllegalArgumentException("empty command");
    }
    command = List.copyOf(command);
    options = List.copyOf(options);
    environment = Map.copyOf(environment);
  }

  /** The command split on whitespace, logs forwarded to this JVM's stderr. */
  public static Executable of(String command, WireFormat format) {
    return new Executable(
        List.of(command.trim().split("\\s+")), format, List.of(), Map.of(), Executable::forward);
  }

  public Executable withOptions(String... extra) {
    return new Executable(command, format, List.of(extra), environment, stderrLines);
  }

  public Executable withFormat(WireFormat other) {
    return new Executable(command, other, options, environment, stderrLines);
  }

  public Executable withEnvironment(Map<String, String> overrides) {
    return new Executable(command, format, options, overrides, stderrLines);
  }

  public Executable withStderr(Consumer<String> sink) {
    return new Executable(command, format, options, environment, sink);
  }

  /** Starts {@code command subcommand --format F options...} with stdin and stdout as pipes. */
  Process start(String subcommand) {
    List<String> argv = new ArrayList<>(command);
    argv.add(subcommand);
    argv.add("--format");
    argv.add(format.cliName);
    argv.addAll(options);
    ProcessBuilder builder = new ProcessBuilder(argv);
    builder.environment().putAll(environment);
    try {
      return builder.start();
    } catch (IOException e) {
      throw new WardenException.CannotStart("cannot start " + String.join(" ", argv), e);
    }
  }

  private static void forward(String line) {
    System.err.println(line);
  }
}
