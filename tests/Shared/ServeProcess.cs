using System.Diagnostics;

namespace IsoTest.TestSupport;

/// <summary>
/// A real <c>isotest serve</c> process (the CLI's build output run by <c>dotnet</c>) on a unix socket in a temp
/// directory, with an image store of its own: what a crash, a hang or a leak looks like from outside.
/// Stopped with SIGTERM on dispose (killed if it does not exit), and its directory removed.
/// </summary>
public sealed class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly System.Text.StringBuilder _output = new();

    private ServeProcess(Process process, string directory)
    {
        _process = process;
        _directory = directory;
    }

    public string Socket => Path.Combine(_directory, "docker.sock");

    public string DockerHost => "unix://" + Socket;

    /// <summary>The server's image store (ISOTEST_IMAGE_STORE); its volumes are in <c>volumes/</c> below it.</summary>
    public string ImageStore => Path.Combine(_directory, "images");

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <summary>What it printed on stdout and stderr so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>The CLI's dll next to this build's configuration (Release or Debug), found from the repository root.</summary>
    public static string CliDll()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "IsoTest.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        // .../bin/<Configuration>/<tfm>/ of whoever runs this: the CLI is built the same way beside it.
        var tail = Path.GetRelativePath(Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../..")), AppContext.BaseDirectory);
        return Path.Combine(dir ?? ".", "src/IsoTest.Cli", tail.StartsWith("bin", StringComparison.Ordinal) ? tail : Path.Combine("bin", tail), "IsoTest.Cli.dll");
    }

    public static async Task<ServeProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        var dll = CliDll();
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{dll} is missing: build src/IsoTest.Cli in the same configuration first", dll);
        }

        var directory = Directory.CreateTempSubdirectory("isotest-serve-process-").FullName;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { dll, "serve", "-H", "unix://" + Path.Combine(directory, "docker.sock") })
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["ISOTEST_IMAGE_STORE"] = Path.Combine(directory, "images");
        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
        var serve = new ServeProcess(process, directory);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) => serve.Append(e.Data, ready);
        process.ErrorDataReceived += (_, e) => serve.Append(e.Data, null);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await serve.DisposeAsync().ConfigureAwait(false);
            throw new TimeoutException($"isotest serve printed no ready line in 60 s: {serve.Output}");
        }

        return serve;
    }

    private void Append(string? line, TaskCompletionSource? ready)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (line.Contains("API listening", StringComparison.Ordinal))
        {
            ready?.TrySetResult();
        }
    }

    /// <summary>SIGTERM, then its exit code (null when it had to be killed after <paramref name="grace"/>).</summary>
    public async Task<int?> StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync().ConfigureAwait(false);
        }

        try
        {
            await _process.WaitForExitAsync().WaitAsync(grace).ConfigureAwait(false);
            return _process.ExitCode;
        }
        catch (TimeoutException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await StopAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }

        _process.Dispose();
        if (Directory.Exists(_directory))
        {
            // The store's layers may not all be the user's to delete rootless: the engine's ImageStore.RemoveTree knows how.
            IsoTest.Engine.Images.ImageStore.RemoveTree(_directory);
        }
    }
}
