using System.Diagnostics;
using IsoTest.Cli;

namespace IsoTest.Cli.Tests;

/// <summary><c>isotest image prune</c> in one process while <c>isotest run</c> in another runs a container of the image.</summary>
[Collection("CliImages")]
public sealed class ImagePruneTests : IDisposable
{
    private readonly BusyboxInRegistry _busybox = new();

    public void Dispose() => _busybox.Dispose();

    private static Task<(int Exit, string Out, string Err)> RunAsync(params string[] args) => Cli.RunAsync(args);

    [Fact]
    public async Task Prune_InAnotherProcess_LeavesARunningContainersImage_ThenTakesItOnceTheContainerIsGone()
    {
        var (pulled, _, pullErr) = await RunAsync("pull", "-q", _busybox.Image);
        Assert.True(pulled == 0, pullErr);
        var layers = Layers();
        Assert.NotEmpty(layers);

        var start = new ProcessStartInfo("dotnet", [typeof(Program).Assembly.Location, "run", "--rm", "--pull", "never", _busybox.Image, "sh", "-c", "echo started; exec sleep 60"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["ISOTEST_IMAGE_STORE"] = _busybox.Store;
        using var runner = Process.Start(start)!;
        var stderr = runner.StandardError.ReadToEndAsync();
        try
        {
            var first = await runner.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.True(first == "started", $"isotest run printed {first ?? "nothing"}: {(runner.HasExited ? await stderr : "")}");

            // rmi, then prune: no tag reaches the image any more, but the other process's container holds it.
            var (rmi, _, rmiErr) = await RunAsync("rmi", _busybox.Image);
            Assert.True(rmi == 0, rmiErr);
            var (held, heldOut, _) = await RunAsync("image", "prune");
            Assert.Equal(0, held);
            Assert.StartsWith("Deleted 0 layers", heldOut, StringComparison.Ordinal);
            Assert.All(layers, l => Assert.True(Directory.Exists(l), $"{l} was pruned under a running container"));
            Assert.False(runner.HasExited);
        }
        finally
        {
            // SIGTERM: isotest run stops and removes its container, as docker run does.
            Process.Start("kill", ["-TERM", runner.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            Assert.True(runner.WaitForExit(TimeSpan.FromMinutes(1)), "isotest run did not stop on SIGTERM");
        }

        var (freed, freedOut, _) = await RunAsync("image", "prune");
        Assert.Equal(0, freed);
        Assert.StartsWith($"Deleted {layers.Length} layers", freedOut, StringComparison.Ordinal);
        Assert.All(layers, l => Assert.False(Directory.Exists(l)));
        Assert.Empty(Layers());
    }

    /// <summary>The unpacked layers (layers/, or layers-KEY/ for a rootless owner mapping).</summary>
    private string[] Layers() =>
        [.. Directory.GetDirectories(_busybox.Store, "layers*").SelectMany(Directory.GetDirectories)];
}
