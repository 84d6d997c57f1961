using System.Diagnostics;

namespace IsoTest.Bench;

/// <summary>Runs helper programs (docker, crun --version) and captures what they print.</summary>
internal static class Shell
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string Tail => (Stderr.Length > 0 ? Stderr : Stdout).Trim() is var t && t.Length > 600 ? "..." + t[^600..] : t;
    }

    public static async Task<Result> RunAsync(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {program}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return new Result(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The full path of <paramref name="program"/> on PATH, or null.</summary>
    public static string? Which(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);

    /// <summary>
    /// Stops a daemon the bench started (a dockerd): SIGTERM, so it unmounts its layers and stops its containerd on the
    /// way out, then SIGKILL if it is not gone in 30 s.
    /// </summary>
    public static async Task StopDaemonAsync(System.Diagnostics.Process daemon)
    {
        if (daemon.HasExited)
        {
            return;
        }

        await RunAsync("kill", ["-TERM", daemon.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await daemon.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            daemon.Kill(entireProcessTree: true);
        }
    }

    /// <summary>Ends a line-driven helper process: end of input ends its loop; one that does not exit in 10 s is killed.</summary>
    public static async Task EndDriverAsync(System.Diagnostics.Process driver)
    {
        driver.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await driver.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            driver.Kill(entireProcessTree: true);
            await driver.WaitForExitAsync(CancellationToken.None);
        }

        driver.Dispose();
    }
}
