using Docker.DotNet;
using IsoTest.Docker;
using IsoTest.Server;
using Xunit;

namespace IsoTest.Tests.Conformance;

/// <summary>
/// IsoTest's own API server (<c>isotest serve</c>) on a unix socket in a temp directory, with an image
/// store of its own, and the Docker backend pointed at it: the third target of the suite. Disposing it
/// removes the server's containers, networks, images and the directory.
/// </summary>
public sealed class ServerConformanceFixture : IAsyncLifetime
{
    private string _directory = "";

    public DockerApiServer Server { get; private set; } = null!;

    public DockerBackend Backend { get; private set; } = null!;

    /// <summary>A separate client for checking what the backend did.</summary>
    public DockerClient Client { get; private set; } = null!;

    public BusyboxRootFs RootFs { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _directory = Directory.CreateTempSubdirectory("isotest-server-conformance-").FullName;
        var socket = Path.Combine(_directory, "docker.sock");
        Server = await DockerApiServer.StartAsync(new DockerApiServerOptions { Hosts = ["unix://" + socket], ImageStore = Path.Combine(_directory, "images") });
        var endpoint = new Uri("unix://" + socket);
        Backend = new DockerBackend(new DockerBackendOptions { Endpoint = endpoint });
        Client = new DockerClientBuilder().WithEndpoint(endpoint).Build();
        RootFs = new BusyboxRootFs();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Backend.DisposeAsync();
            Client.Dispose();
            await Server.DisposeAsync();
        }
        finally
        {
            RootFs.Dispose();
            // Rootless with subordinate ranges the image store holds files this user no longer owns: the store removes them.
            IsoTest.Engine.Images.ImageStore.RemoveTree(_directory);
        }
    }
}

/// <summary>The conformance suite on the Docker backend against IsoTest's server: it must answer as dockerd does.</summary>
public sealed class ServerConformanceTests(ServerConformanceFixture fixture)
    : ConformanceTests(fixture.RootFs), IClassFixture<ServerConformanceFixture>
{
    protected override IContainerBackend Backend => fixture.Backend;

    protected override bool IsDocker => true;

    protected override bool EngineUnderneath => true;

    protected override Task<int> LiveNetworksAsync() => DockerLeakChecks.LiveNetworksAsync(fixture.Client);

    protected override Task AssertNothingLeftAsync(string testId) => DockerLeakChecks.AssertNothingLeftAsync(fixture.Client, TestLabel, testId);
}
