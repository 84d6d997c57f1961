namespace IsoTest.Server.Tests;

/// <summary>
/// User-defined networks through `isotest serve` with the real docker CLI: containers on one network reach
/// each other by name and alias, a container on another network does not, and a network in use cannot be removed.
/// </summary>
public sealed class DockerCliNetworkTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Image = "isotest/host";

    // bash's /dev/tcp resolves names through glibc (/etc/hosts), unlike the static busybox's nc.
    private const string Fetch = "exec 3<>/dev/tcp/$0/7000 && cat <&3";

    [Fact]
    public async Task Run_OnANetwork_ReachesAnotherContainerByNameAndAlias()
    {
        var network = $"srv-nw-{Guid.NewGuid():N}"[..20];
        var (code, id, stderr) = await server.DockerAsync("network", "create", "--label", "suite=server", network);
        Assert.True(code == 0, stderr);
        var db = $"db-{Guid.NewGuid():N}"[..15];
        try
        {
            (code, _, stderr) = await server.DockerAsync("run", "-d", "--name", db, "--network", network, "--network-alias", "database",
                Image, "sh", "-c", "while true; do echo pong | busybox nc -l -p 7000; done");
            Assert.True(code == 0, stderr);

            foreach (var name in new[] { "database", db })
            {
                var output = "";
                for (var i = 0; i < 100 && output != "pong\n"; i++)
                {
                    (_, output, stderr) = await server.DockerAsync("run", "--rm", "--network", network, Image, "bash", "-c", Fetch, name);
                    await Task.Delay(50);
                }

                Assert.True(output == "pong\n", $"by {name}: '{output}' {stderr}");
            }

            // Another network's member neither resolves nor reaches it.
            var other = $"srv-nw-{Guid.NewGuid():N}"[..20];
            Assert.Equal(0, (await server.DockerAsync("network", "create", other)).ExitCode);
            var (isolatedCode, isolated, _) = await server.DockerAsync("run", "--rm", "--network", other, Image, "bash", "-c", "timeout 5 bash -c \"$0\" database || echo unreachable", Fetch);
            Assert.Equal(0, isolatedCode);
            Assert.Equal("unreachable\n", isolated);
            Assert.Equal(0, (await server.DockerAsync("network", "rm", other)).ExitCode);

            var (lsCode, listed, lsErr) = await server.DockerAsync("network", "ls", "--filter", "label=suite=server", "--format", "{{.ID}} {{.Name}}");
            Assert.True(lsCode == 0, lsErr);
            Assert.Equal($"{id.Trim()[..12]} {network}", listed.Trim());
            var (_, members, _) = await server.DockerAsync("network", "inspect", "--format", "{{range .Containers}}{{.Name}}{{end}}", network);
            Assert.Equal(db, members.Trim());

            var (rmCode, _, inUse) = await server.DockerAsync("network", "rm", network);
            Assert.NotEqual(0, rmCode);
            Assert.Contains("has active endpoints", inUse);
        }
        finally
        {
            await server.DockerAsync("rm", "-f", db);
        }

        Assert.Equal(0, (await server.DockerAsync("network", "rm", network)).ExitCode);
        var (inspectCode, _, gone) = await server.DockerAsync("network", "inspect", network);
        Assert.NotEqual(0, inspectCode);
        Assert.Contains("not found", gone);
    }

    [Fact]
    public async Task NetworkConnect_BeforeStart_JoinsWithTheAlias_AndAfterStartIsRefusedWithTheFix()
    {
        var network = $"srv-nw-{Guid.NewGuid():N}"[..20];
        Assert.Equal(0, (await server.DockerAsync("network", "create", network)).ExitCode);
        var db = $"db-{Guid.NewGuid():N}"[..15];
        try
        {
            var (code, _, stderr) = await server.DockerAsync("create", "--name", db, Image, "sh", "-c", "while true; do echo pong | busybox nc -l -p 7000; done");
            Assert.True(code == 0, stderr);
            (code, _, stderr) = await server.DockerAsync("network", "connect", "--alias", "late-db", network, db);
            Assert.True(code == 0, stderr);
            var (_, networks, _) = await server.DockerAsync("inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", db);
            Assert.Contains(network, networks);
            (code, _, stderr) = await server.DockerAsync("network", "connect", network, db);
            Assert.NotEqual(0, code);
            Assert.Contains("already exists in network", stderr);

            Assert.Equal(0, (await server.DockerAsync("start", db)).ExitCode);
            var output = "";
            for (var i = 0; i < 100 && output != "pong\n"; i++)
            {
                (_, output, stderr) = await server.DockerAsync("run", "--rm", "--network", network, Image, "bash", "-c", Fetch, "late-db");
                await Task.Delay(50);
            }

            Assert.True(output == "pong\n", $"by late-db: '{output}' {stderr}");

            (code, _, stderr) = await server.DockerAsync("network", "disconnect", network, db);
            Assert.NotEqual(0, code);
            Assert.Contains("after it started is not supported", stderr);
            Assert.Contains("docker network connect", stderr);
        }
        finally
        {
            await server.DockerAsync("rm", "-f", db);
            await server.DockerAsync("network", "rm", network);
        }
    }

    [Fact]
    public async Task NetworkDisconnect_BeforeStart_LeavesTheNetwork()
    {
        var network = $"srv-nw-{Guid.NewGuid():N}"[..20];
        Assert.Equal(0, (await server.DockerAsync("network", "create", network)).ExitCode);
        var name = $"dc-{Guid.NewGuid():N}"[..15];
        try
        {
            Assert.Equal(0, (await server.DockerAsync("create", "--name", name, "--network", network, Image, "true")).ExitCode);
            var (code, _, stderr) = await server.DockerAsync("network", "disconnect", network, name);
            Assert.True(code == 0, stderr);
            var (_, members, _) = await server.DockerAsync("network", "inspect", "--format", "{{range .Containers}}{{.Name}}{{end}}", network);
            Assert.Equal("", members.Trim());
            (code, _, stderr) = await server.DockerAsync("network", "disconnect", network, name);
            Assert.NotEqual(0, code);
            Assert.Contains("is not connected to network", stderr);
            Assert.Equal(0, (await server.DockerAsync("network", "rm", network)).ExitCode);
        }
        finally
        {
            await server.DockerAsync("rm", "-f", name);
            await server.DockerAsync("network", "rm", network);
        }
    }

    [Fact]
    public async Task Run_OnAMissingNetwork_SaysSoAndLeavesNoContainer()
    {
        var name = $"nn-{Guid.NewGuid():N}"[..15];
        var (code, _, stderr) = await server.DockerAsync("run", "--rm", "--name", name, "--network", "no-such-net", Image, "true");
        Assert.NotEqual(0, code);
        Assert.Contains("network no-such-net not found", stderr);
        var (_, listed, _) = await server.DockerAsync("ps", "-a", "--filter", $"name={name}", "--format", "{{.Names}}");
        Assert.Equal("", listed.Trim());
    }

    [Fact]
    public async Task NetworkCreate_TwiceOrPredefined_IsAConflict()
    {
        var network = $"srv-nw-{Guid.NewGuid():N}"[..20];
        Assert.Equal(0, (await server.DockerAsync("network", "create", network)).ExitCode);
        try
        {
            var (code, _, stderr) = await server.DockerAsync("network", "create", network);
            Assert.NotEqual(0, code);
            Assert.Contains($"network with name {network} already exists", stderr);
            (code, _, stderr) = await server.DockerAsync("network", "create", "host");
            Assert.NotEqual(0, code);
            Assert.Contains("already exists", stderr);
        }
        finally
        {
            Assert.Equal(0, (await server.DockerAsync("network", "rm", network)).ExitCode);
        }
    }
}
