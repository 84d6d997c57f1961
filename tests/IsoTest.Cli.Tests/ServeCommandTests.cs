using System.Diagnostics;

namespace IsoTest.Cli.Tests;

/// <summary>`isotest serve` in process: ready line, a real docker CLI served, a clean stop that leaves no socket or container.</summary>
public sealed class ServeCommandTests
{
    [Fact]
    public async Task Serve_AnswersTheDockerCli_AndStopsCleanly()
    {
        var directory = Directory.CreateTempSubdirectory("isotest-serve-").FullName;
        var socket = Path.Combine(directory, "docker.sock");
        using var stop = new CancellationTokenSource();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        try
        {
            var serve = Program.RunAsync(["serve", "-H", "unix://" + socket], TextWriter.Synchronized(stdout), TextWriter.Synchronized(stderr), stopRequested: stop.Token);
            for (var i = 0; i < 200 && !stdout.ToString().Contains("API listening") && !serve.IsCompleted; i++)
            {
                await Task.Delay(50);
            }

            Assert.Contains($"API listening on unix://{socket}", stdout.ToString());
            // A duration no other process uses, to find the container's process on the host afterwards.
            var duration = $"600.{Random.Shared.Next(100_000, 999_999)}";
            var (code, output) = await DockerAsync(socket, "run", "-d", "isotest/host", "sleep", duration);
            Assert.True(code == 0, output);
            Assert.Contains(Process.GetProcesses(), p => Cmdline(p.Id).Contains(duration, StringComparison.Ordinal));

            stop.Cancel();
            Assert.Equal(0, await serve.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.False(File.Exists(socket), "the socket is removed on stop");
            Assert.Contains("stopping, removing its containers", stderr.ToString());
            Assert.DoesNotContain(Process.GetProcesses(), p => Cmdline(p.Id).Contains(duration, StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Serve_OnTcpBeyondLoopback_IsRefused()
    {
        var stderr = new StringWriter();
        var code = await Program.RunAsync(["serve", "-H", "tcp://0.0.0.0:2375"], new StringWriter(), stderr);
        Assert.Equal(125, code);
        Assert.Contains("only on loopback", stderr.ToString());
    }

    private static string Cmdline(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static async Task<(int Code, string Output)> DockerAsync(string socket, params string[] args)
    {
        var info = new ProcessStartInfo(File.Exists("/usr/local/bin/docker") ? "/usr/local/bin/docker" : "docker") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["DOCKER_HOST"] = "unix://" + socket;
        info.Environment.Remove("DOCKER_API_VERSION");
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output);
    }
}
