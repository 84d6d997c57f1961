using System.Diagnostics;

namespace IsoTest.Server.Tests;

/// <summary>
/// One IsoTest API server on a unix socket in a temp directory for a test class, and the real docker CLI
/// (/usr/local/bin/docker, or docker on PATH) pointed at it with DOCKER_HOST.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private string? _directory;

    public DockerApiServer Server { get; private set; } = null!;

    public string Socket { get; private set; } = "";

    public string DockerHost => "unix://" + Socket;

    /// <summary>The server's image store directory.</summary>
    public string ImageStore { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _directory = Directory.CreateTempSubdirectory("isotest-server-tests-").FullName;
        Socket = Path.Combine(_directory, "docker.sock");
        // An image store of its own: pulls, imports and prunes here touch nothing else on the machine.
        ImageStore = Path.Combine(_directory, "images");
        Server = await DockerApiServer.StartAsync(new DockerApiServerOptions { Hosts = ["unix://" + Socket], ImageStore = ImageStore });
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        if (_directory is not null)
        {
            // Rootless with subordinate ranges the store's layers are not all the user's to delete: RemoveTree knows how
            // (a plain Directory.Delete threw and left the directory behind).
            IsoTest.Engine.Images.ImageStore.RemoveTree(_directory);
        }
    }

    /// <summary>Runs the docker CLI against the server; returns its exit code and output.</summary>
    public Task<(int ExitCode, string Stdout, string Stderr)> DockerAsync(params string[] args) => DockerWithInputAsync(null, args);

    /// <summary>Runs the docker CLI against the server with <paramref name="stdin"/> (a file) as its input.</summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> DockerWithInputAsync(string? stdin, params string[] args)
    {
        var docker = File.Exists("/usr/local/bin/docker") ? "/usr/local/bin/docker" : "docker";
        var info = new ProcessStartInfo(docker) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.RedirectStandardInput = stdin is not null;
        info.Environment["DOCKER_HOST"] = DockerHost;
        info.Environment.Remove("DOCKER_API_VERSION");   // the CLI negotiates from /_ping, as it would against dockerd
        info.Environment.Remove("DOCKER_CONTEXT");
        info.Environment["DOCKER_CONFIG"] = Path.Combine(_directory!, "docker-config");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await using (var input = File.OpenRead(stdin))
            {
                await input.CopyToAsync(process.StandardInput.BaseStream);
            }

            process.StandardInput.Close();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"docker {string.Join(' ', args)} did not finish in 60 s; stderr so far: {await stderr}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
