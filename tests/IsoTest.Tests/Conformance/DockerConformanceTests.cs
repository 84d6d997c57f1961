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

    protected override async Task<int> LiveNetworksAsync()
    {
        var mine = await daemon.Client.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool> { [$"{DockerOwner.PidLabel}={Environment.ProcessId}"] = true },
            },
        });
        return mine.Count;
    }

    protected override async Task AssertNothingLeftAsync(string testId)
    {
        var left = await daemon.Client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool> { [$"{TestLabel}={testId}"] = true },
            },
        });
        Assert.Empty(left.SelectMany(c => c.Names));
    }
}
