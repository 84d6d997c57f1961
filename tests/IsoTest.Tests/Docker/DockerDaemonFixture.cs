using Docker.DotNet;
using Docker.DotNet.Models;
using IsoTest.Docker;
using Xunit;

namespace IsoTest.Tests.Docker;

/// <summary>
/// The real Docker daemon these tests run against. When it is missing every test in the collection
/// fails with the reason and the fix; they never pass by skipping.
/// </summary>
public sealed class DockerDaemonFixture : IAsyncLifetime
{
    internal const string Image = "isotest/busybox:latest";

    private DockerBackend? _backend;
    private DockerClient? _client;

    internal DockerBackend Backend => _backend ?? throw new InvalidOperationException("fixture not initialized");

    /// <summary>A separate client for checking what the backend did, pinned to the negotiated API version.</summary>
    internal DockerClient Client => _client ?? throw new InvalidOperationException("fixture not initialized");

    public async Task InitializeAsync()
    {
        _backend = DockerBackend.Create();
        try
        {
            await _backend.GetClientAsync(CancellationToken.None);
        }
        catch (BackendUnavailableException e)
        {
            throw new InvalidOperationException(
                $"The Docker backend tests need a running Docker daemon: {e.Message}", e);
        }

        _client = new DockerClientBuilder().WithEndpoint(_backend.Endpoint).WithApiVersion(_backend.ApiVersion!).Build();
        try
        {
            await _client.Images.InspectImageAsync(Image);
        }
        catch (DockerImageNotFoundException e)
        {
            throw new InvalidOperationException($"The test image {Image} is missing: run `.ci/docker-setup.sh` to build it from busybox-static.", e);
        }
    }

    public async Task DisposeAsync()
    {
        if (_backend is not null)
        {
            await _backend.DisposeAsync();
        }

        if (_client is null)
        {
            return;
        }

        // Leak check: nothing labelled as ours may outlive the tests.
        var left = await ListOwnAsync(_client);
        foreach (var container in left)
        {
            await _client.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true });
        }

        _client.Dispose();
        if (left.Count > 0)
        {
            throw new InvalidOperationException($"Docker tests leaked {left.Count} container(s): {string.Join(", ", left.SelectMany(c => c.Names))}");
        }
    }

    internal static async Task<IList<ContainerListResponse>> ListOwnAsync(IDockerClient client) =>
        await client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool> { [$"isotest.owner.pid={Environment.ProcessId}"] = true },
            },
        });
}

[CollectionDefinition(Name)]
public sealed class DockerCollection : ICollectionFixture<DockerDaemonFixture>
{
    public const string Name = "Docker daemon";
}
