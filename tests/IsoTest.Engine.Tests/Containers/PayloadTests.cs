using IsoTest.Engine.Containers;
using IsoTest.Engine.RootFs;

namespace IsoTest.Engine.Tests.Containers;

/// <summary>The command, environment and working directory a container runs with: the spec over the image, Docker's defaults last.</summary>
public sealed class PayloadTests
{
    private static readonly ResolvedUser Root = new(0, 0, "/root");

    private static readonly ResolvedRoot Image = new(false, ["/layers/top", "/layers/base"], new ImageConfig(
        Entrypoint: ["docker-entrypoint.sh"],
        Command: ["postgres"],
        Environment: ["PATH=/usr/lib/postgresql/bin:/usr/bin", "PGDATA=/var/lib/postgresql/data"],
        WorkingDirectory: "/srv",
        User: "postgres"));

    [Fact]
    public void For_HostRoot_GetsDockersDefaults()
    {
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.Host, Command = ["true"] };

        var payload = Payload.For(spec, new ResolvedRoot(true, ["/"]), Root, "abc");

        Assert.Equal(["true"], payload.Argv);
        Assert.Equal([$"PATH={ContainerSpec.DefaultPath}", "HOSTNAME=abc", "HOME=/root"], payload.Environment);
        Assert.Equal("/", payload.WorkingDirectory);
    }

    [Fact]
    public void For_Image_TheImagesDefaultsUnderTheSpecs()
    {
        var spec = new ContainerSpec
        {
            RootFileSystem = RootFileSystem.FromImage("postgres:16"),
            Command = ["postgres", "-c", "fsync=off"],
            Environment = new Dictionary<string, string> { ["PGDATA"] = "/tmp/data" },
        };

        var payload = Payload.For(spec, Image, Root, "abc");

        Assert.Equal(["docker-entrypoint.sh", "postgres", "-c", "fsync=off"], payload.Argv);
        Assert.Equal(["PATH=/usr/lib/postgresql/bin:/usr/bin", "PGDATA=/tmp/data", "HOSTNAME=abc", "HOME=/root"], payload.Environment);
        Assert.Equal("/srv", payload.WorkingDirectory);
    }

    [Fact]
    public void For_Image_AnExplicitEntrypointDropsTheImagesCommand()
    {
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.FromImage("postgres:16"), Entrypoint = ["/bin/sh"], WorkingDirectory = "/" };

        var payload = Payload.For(spec, Image, Root, "abc");

        Assert.Equal(["/bin/sh"], payload.Argv);
        Assert.Equal("/", payload.WorkingDirectory);
    }

    [Fact]
    public void For_Image_NoCommandRunsTheImagesEntrypointAndCommand()
    {
        var spec = new ContainerSpec { RootFileSystem = RootFileSystem.FromImage("postgres:16") };

        Assert.Equal(["docker-entrypoint.sh", "postgres"], Payload.For(spec, Image, Root, "abc").Argv);
    }
}
