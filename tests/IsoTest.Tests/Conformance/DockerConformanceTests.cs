using Docker.DotNet;
using Docker.DotNet.Models;
using IsoTest.Docker;
using IsoTest.Tests.Docker;
using Xunit;

namespace IsoTest.Tests.Conformance;

/// <summary>
/// The busybox rootfs for the Docker run. The backend imports it as an image on first use; that image
/// is removed here with the directory, so the run leaves no image behind either.
/// </summary>
public sealed class DockerRootFsFixture : IAsyncLifetime
{
    public BusyboxRootFs RootFs { get; private set; } = null!;

    public Task InitializeAsync()
    {
        RootFs = new BusyboxRootFs();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        // Computed before the directory goes: the tag hashes its path and mtime.
        var image = DockerImages.DirectoryImageReference(RootFs.Path);
        RootFs.Dispose();
        await using var backend = DockerBackend.Create();
        try
        {
            var client = await backend.GetClientAsync(CancellationToken.None);
            await client.Images.DeleteImageAsync(image, new ImageDeleteParameters { Force = true });
        }
        catch (DockerImageNotFoundException)
        {
            // never imported (every Docker test failed before creating a container)
        }
        catch (BackendUnavailableException)
        {
            // no daemon: nothing was imported, and the daemon fixture already failed every test saying so
        }
    }
}

/// <summary>
/// The conformance suite on the Docker backend. It shares the Docker collection (and its daemon check,
/// which fails every test with the reason when no daemon answers) so the collection's own leak check at
/// the end cannot race these containers.
/// </summary>
[Collection(DockerCollection.Name)]
public sealed class DockerConformanceTests(DockerDaemonFixture daemon, DockerRootFsFixture rootFs)
    : ConformanceTests(rootFs.RootFs), IClassFixture<DockerRootFsFixture>
{
    protected override IContainerBackend Backend => daemon.Backend;

    protected override bool IsDocker => true;

    protected override Task<int> LiveNetworksAsync() => DockerLeakChecks.LiveNetworksAsync(daemon.Client);

    protected override Task AssertNothingLeftAsync(string testId) => DockerLeakChecks.AssertNothingLeftAsync(daemon.Client, TestLabel, testId);
}

/// <summary>The leak checks of the suite's targets that speak Docker's API (dockerd, IsoTest's server).</summary>
internal static class DockerLeakChecks
{
    /// <summary>Networks this process made and left on the daemon.</summary>
    public static async Task<int> LiveNetworksAsync(IDockerClient client)
    {
        var mine = await client.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool> { [$"{DockerOwner.PidLabel}={Environment.ProcessId}"] = true },
            },
        });
        return mine.Count;
    }

    /// <summary>Fails when a container labelled with the test's id is left.</summary>
    public static async Task AssertNothingLeftAsync(IDockerClient client, string label, string testId)
    {
        var left = await client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool> { [$"{label}={testId}"] = true },
            },
        });
        Assert.Empty(left.SelectMany(c => c.Names));
    }
}
