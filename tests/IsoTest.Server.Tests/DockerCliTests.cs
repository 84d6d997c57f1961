namespace IsoTest.Server.Tests;

/// <summary>The real docker CLI against `isotest serve`: what a user types, unchanged.</summary>
public sealed class DockerCliTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Image = "isotest/host";

    [Fact]
    public async Task Version_NegotiatesTheServersApi()
    {
        var (code, stdout, stderr) = await server.DockerAsync("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}");
        Assert.True(code == 0, stderr);
        Assert.Equal("1.44 linux", stdout.Trim());
    }

    [Fact]
    public async Task Run_Foreground_StreamsOutputAndExitCode()
    {
        var (code, stdout, stderr) = await server.DockerAsync("run", "--rm", Image, "sh", "-c", "echo out; echo err >&2; exit 3");
        Assert.Equal(3, code);
        Assert.Equal("out\n", stdout);
        Assert.Contains("err", stderr);
    }

    [Fact]
    public async Task Run_MissingProgram_Exits127WithRuncsWords()
    {
        // The docker CLI turns runc's "executable file not found" into exit 127, as against dockerd.
        var (code, _, stderr) = await server.DockerAsync("run", "--rm", Image, "no-such-program-here");
        Assert.Equal(127, code);
        Assert.Contains("exec: \"no-such-program-here\": executable file not found in $PATH", stderr);

        var name = $"x-{Guid.NewGuid():N}";
        Assert.Equal(0, (await server.DockerAsync("run", "-d", "--name", name, Image, "sleep", "600")).ExitCode);
        try
        {
            var (execCode, _, execErr) = await server.DockerAsync("exec", name, "no-such-program-here");
            Assert.Equal(127, execCode);
            Assert.Contains("executable file not found", execErr);
        }
        finally
        {
            await server.DockerAsync("rm", "-f", name);
        }
    }

    [Fact]
    public async Task Run_WithRm_LeavesNoContainer()
    {
        var name = $"rm-{Guid.NewGuid():N}";
        var (code, _, stderr) = await server.DockerAsync("run", "--rm", "--name", name, Image, "true");
        Assert.True(code == 0, stderr);
        var (_, listed, _) = await server.DockerAsync("ps", "-a", "--filter", $"name={name}", "--format", "{{.Names}}");
        Assert.Equal("", listed.Trim());
    }

    [Fact]
    public async Task Run_Detached_ThenLogsInspectStopRm()
    {
        var name = $"d-{Guid.NewGuid():N}";
        var (code, id, stderr) = await server.DockerAsync("run", "-d", "--name", name, "-e", "GREETING=hello", "--label", "suite=server",
            "-m", "64m", "--cpus", "0.5", "--pids-limit", "32", Image, "sh", "-c", "echo $GREETING from $(hostname); exec sleep 600");
        Assert.True(code == 0, stderr);
        id = id.Trim();
        Assert.Matches("^[0-9a-f]{64}$", id);

        var logs = "";
        for (var i = 0; i < 100 && !logs.Contains("hello"); i++)
        {
            (_, logs, _) = await server.DockerAsync("logs", name);
            await Task.Delay(50);
        }

        Assert.Equal($"hello from {id[..12]}\n", logs);
        var (_, state, _) = await server.DockerAsync("inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{index .Config.Labels \"suite\"}}", name);
        Assert.Equal("running true 67108864 500000000 server", state.Trim());
        var (_, ps, _) = await server.DockerAsync("ps", "--filter", "label=suite=server", "--format", "{{.ID}} {{.Names}}");
        Assert.Contains($"{id[..12]} {name}", ps);

        Assert.Equal(0, (await server.DockerAsync("stop", "-t", "1", name)).ExitCode);
        (_, state, _) = await server.DockerAsync("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", id[..10]);
        // The command is PID 1 of its own PID namespace, as under dockerd: sleep has no SIGTERM handler, so the
        // kernel drops the signal and the stop ends in SIGKILL after the grace period (137).
        Assert.Equal("exited 137", state.Trim());
        Assert.Equal(0, (await server.DockerAsync("rm", name)).ExitCode);
        var (inspectCode, _, missing) = await server.DockerAsync("inspect", name);
        Assert.NotEqual(0, inspectCode);
        Assert.Contains("No such", missing);
    }

    [Fact]
    public async Task Exec_ReturnsOutputAndExitCode()
    {
        var name = $"x-{Guid.NewGuid():N}";
        Assert.Equal(0, (await server.DockerAsync("run", "-d", "--name", name, Image, "sleep", "600")).ExitCode);
        try
        {
            var (code, stdout, _) = await server.DockerAsync("exec", name, "sh", "-c", "echo inside; exit 5");
            Assert.Equal(5, code);
            Assert.Equal("inside\n", stdout);
        }
        finally
        {
            Assert.Equal(0, (await server.DockerAsync("rm", "-f", name)).ExitCode);
        }
    }

    [Fact]
    public async Task Exec_WithEnvUserAndWorkdir_RunsAsAsked()
    {
        var name = $"x-{Guid.NewGuid():N}";
        Assert.Equal(0, (await server.DockerAsync("run", "-d", "--name", name, "-e", "KEPT=from-run", "-e", "OVER=old", Image, "sleep", "600")).ExitCode);
        try
        {
            // Rootless only the container user exists inside, so there -u names that user (root) by number.
            var user = Environment.UserName == "root" ? "nobody" : "0:0";
            var (code, stdout, stderr) = await server.DockerAsync("exec", "-e", "OVER=new", "-e", "ADDED=yes", "-u", user, "-w", "/tmp", name,
                "sh", "-c", "echo $KEPT $OVER $ADDED $(pwd) $(id -u)");
            Assert.True(code == 0, stderr);
            Assert.Equal($"from-run new yes /tmp {(user == "nobody" ? "65534" : "0")}\n", stdout);

            (code, _, stderr) = await server.DockerAsync("exec", "-u", "no-such-user", name, "true");
            Assert.NotEqual(0, code);
            Assert.Contains("unable to find user no-such-user", stderr);
            (code, _, stderr) = await server.DockerAsync("exec", "-w", "/no/such/dir", name, "true");
            Assert.NotEqual(0, code);
            Assert.Contains("/no/such/dir", stderr);
        }
        finally
        {
            Assert.Equal(0, (await server.DockerAsync("rm", "-f", name)).ExitCode);
        }
    }

    [Fact]
    public async Task Top_ListsTheCommandAndItsChildren()
    {
        var name = $"top-{Guid.NewGuid():N}";
        Assert.Equal(0, (await server.DockerAsync("run", "-d", "--name", name, Image, "sh", "-c", "sleep 601 & exec sleep 600")).ExitCode);
        try
        {
            var listed = "";
            for (var i = 0; i < 100 && !(listed.Contains("sleep 600") && listed.Contains("sleep 601")); i++)
            {
                (_, listed, _) = await server.DockerAsync("top", name);
                await Task.Delay(50);
            }

            Assert.StartsWith("UID", listed);
            Assert.Contains("sleep 600", listed);
            Assert.Contains("sleep 601", listed);
            Assert.DoesNotContain("isotest-init", listed);
            Assert.Equal(0, (await server.DockerAsync("stop", "-t", "0", name)).ExitCode);
            var (code, _, stderr) = await server.DockerAsync("top", name);
            Assert.NotEqual(0, code);
            Assert.Contains("is not running", stderr);
        }
        finally
        {
            await server.DockerAsync("rm", "-f", name);
        }
    }

    [Fact]
    public async Task ContainerPrune_RemovesTheStoppedOnesWithTheLabel_AndSystemDfCountsWhatIsLeft()
    {
        var label = $"prune={Guid.NewGuid():N}";
        var stopped = $"stopped-{Guid.NewGuid():N}";
        var running = $"running-{Guid.NewGuid():N}";
        Assert.Equal(0, (await server.DockerAsync("run", "--name", stopped, "--label", label, Image, "true")).ExitCode);
        Assert.Equal(0, (await server.DockerAsync("run", "-d", "--name", running, "--label", label, Image, "sleep", "600")).ExitCode);
        try
        {
            var (code, stdout, stderr) = await server.DockerAsync("container", "prune", "-f", "--filter", $"label={label}");
            Assert.True(code == 0, stderr);
            var (_, left, _) = await server.DockerAsync("ps", "-a", "--filter", $"label={label}", "--format", "{{.Names}}");
            Assert.Equal(running, left.Trim());
            Assert.Contains("Deleted Containers", stdout);

            (code, var df, stderr) = await server.DockerAsync("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}");
            Assert.True(code == 0, stderr);
            Assert.Matches("(?m)^Containers [1-9][0-9]* [1-9]", df);
            Assert.Contains("Images ", df);
        }
        finally
        {
            await server.DockerAsync("rm", "-f", stopped, running);
        }
    }

    [Fact]
    public async Task Rm_OfARunningContainer_IsRefusedWithDockersWords()
    {
        var name = $"busy-{Guid.NewGuid():N}";
        Assert.Equal(0, (await server.DockerAsync("run", "-d", "--name", name, Image, "sleep", "600")).ExitCode);
        var (code, _, stderr) = await server.DockerAsync("rm", name);
        Assert.NotEqual(0, code);
        Assert.Contains("You cannot remove a running container", stderr);
        Assert.Equal(0, (await server.DockerAsync("rm", "-f", name)).ExitCode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("127.0.0.1:")]
    public async Task Run_FixedHostPort_IsServedOnExactlyThatPort(string address)
    {
        var name = $"fp-{Guid.NewGuid():N}";
        var hostPort = FreeLoopbackPort();
        var (code, _, stderr) = await server.DockerAsync("run", "-d", "--name", name, "-p", $"{address}{hostPort}:8080", Image, "busybox", "httpd", "-f", "-p", "8080", "-h", "/etc");
        Assert.True(code == 0, stderr);
        try
        {
            var (_, port, _) = await server.DockerAsync("port", name, "8080/tcp");
            Assert.Equal($"127.0.0.1:{hostPort}", port.Trim().Split('\n')[0]);
            Assert.Equal(File.ReadAllText("/etc/hostname"), await GetOnceServedAsync($"http://127.0.0.1:{hostPort}/hostname"));
        }
        finally
        {
            Assert.Equal(0, (await server.DockerAsync("rm", "-f", name)).ExitCode);
        }
    }

    [Fact]
    public async Task Run_TakenHostPort_FailsNamingThePortAndLeavesNoContainer()
    {
        var name = $"tp-{Guid.NewGuid():N}";
        using var holder = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        holder.Start();
        var hostPort = ((System.Net.IPEndPoint)holder.LocalEndpoint).Port;

        var (code, _, stderr) = await server.DockerAsync("run", "-d", "--name", name, "-p", $"{hostPort}:8080", Image, "sleep", "600");

        Assert.NotEqual(0, code);
        Assert.Contains($"Host port {hostPort} (for container port 8080) is already in use", stderr);
        var (_, listed, _) = await server.DockerAsync("ps", "-a", "-q", "--filter", $"name={name}");
        Assert.Equal("", listed.Trim());
    }

    /// <summary>GET of a URL whose server is still starting: retried for up to ~5 s, then null.</summary>
    private static async Task<string?> GetOnceServedAsync(string url)
    {
        using var http = new HttpClient();
        for (var i = 0; i < 100; i++)
        {
            try
            {
                return await http.GetStringAsync(url);
            }
            catch (HttpRequestException)
            {
                await Task.Delay(50);
            }
        }

        return null;
    }

    private static int FreeLoopbackPort()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        return ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Run_PublishedPort_IsReachableFromTheHost()
    {
        var name = $"p-{Guid.NewGuid():N}";
        Assert.Equal(0, (await server.DockerAsync("run", "-d", "--name", name, "-p", "8080", Image, "busybox", "httpd", "-f", "-p", "8080", "-h", "/etc")).ExitCode);
        try
        {
            var (_, port, _) = await server.DockerAsync("port", name, "8080/tcp");
            var endpoint = port.Trim().Split('\n')[0];
            Assert.StartsWith("127.0.0.1:", endpoint);
            Assert.Equal(File.ReadAllText("/etc/hostname"), await GetOnceServedAsync($"http://{endpoint}/hostname"));
        }
        finally
        {
            Assert.Equal(0, (await server.DockerAsync("rm", "-f", name)).ExitCode);
        }
    }

    [Fact]
    public async Task Run_UnknownImage_SaysSo()
    {
        var (code, _, stderr) = await server.DockerAsync("run", "--rm", "no-such-image-here:1", "true");
        Assert.NotEqual(0, code);
        Assert.Contains("no-such-image-here", stderr);
    }

    [Fact]
    public async Task Run_Privileged_IsRefusedWithTheReason()
    {
        var (code, _, stderr) = await server.DockerAsync("run", "--rm", "--privileged", Image, "true");
        Assert.NotEqual(0, code);
        Assert.Contains("privileged containers are not supported", stderr);
    }
}

/// <summary>The reaper protocol Testcontainers speaks to Ryuk, served by the server itself.</summary>
public sealed class ReaperTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Reaper_RemovesLabelledContainers_OnceItsClientIsGone()
    {
        var session = Guid.NewGuid().ToString("N");
        var (code, reaper, stderr) = await server.DockerAsync("run", "-d", "-p", "8080", "-e", "RYUK_RECONNECTION_TIMEOUT=1s", "testcontainers/ryuk:0.14.0");
        Assert.True(code == 0, stderr);
        var (_, doomed, _) = await server.DockerAsync("run", "-d", "--label", $"session={session}", "isotest/host", "sleep", "600");
        var (_, kept, _) = await server.DockerAsync("run", "-d", "--label", "session=other", "isotest/host", "sleep", "600");
        var (_, port, _) = await server.DockerAsync("port", reaper.Trim(), "8080");
        var endpoint = port.Trim().Split('\n')[0].Split(':');

        using (var client = new System.Net.Sockets.TcpClient())
        {
            await client.ConnectAsync(endpoint[0], int.Parse(endpoint[1]));
            var stream = client.GetStream();
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"label=session={session}\n"));
            var ack = new byte[4];
            await stream.ReadExactlyAsync(ack);
            Assert.Equal("ACK\n", System.Text.Encoding.ASCII.GetString(ack));
            var (_, running, _) = await server.DockerAsync("ps", "-q", "--no-trunc", "--filter", $"label=session={session}");
            Assert.Equal(doomed.Trim(), running.Trim());   // nothing is reaped while the client is connected
        }

        var left = "?";
        for (var i = 0; i < 100 && left.Length > 0; i++)
        {
            await Task.Delay(100);
            (_, left, _) = await server.DockerAsync("ps", "-aq", "--filter", $"label=session={session}");
            left = left.Trim();
        }

        Assert.Equal("", left);
        var (_, survivor, _) = await server.DockerAsync("inspect", "--format", "{{.State.Status}}", kept.Trim());
        Assert.Equal("running", survivor.Trim());
        Assert.Equal(0, (await server.DockerAsync("rm", "-f", kept.Trim())).ExitCode);
    }
}

/// <summary>Named volumes through `isotest serve` with the real docker CLI: a directory per volume that outlives its containers.</summary>
public sealed class DockerCliVolumeTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Image = "isotest/host";

    [Fact]
    public async Task Volume_CreateMountInspectRm_KeepsDataAcrossContainers()
    {
        var volume = $"vol-{Guid.NewGuid():N}"[..16];
        var (code, _, stderr) = await server.DockerAsync("volume", "create", "--label", "suite=server", volume);
        Assert.True(code == 0, stderr);
        try
        {
            (code, _, stderr) = await server.DockerAsync("run", "--rm", "-v", $"{volume}:/data", Image, "sh", "-c", "echo kept > /data/file");
            Assert.True(code == 0, stderr);
            var (_, read, readErr) = await server.DockerAsync("run", "--rm", "-v", $"{volume}:/data:ro", Image, "sh", "-c", "cat /data/file; touch /data/x 2>/dev/null || echo read-only");
            Assert.True(read == "kept\nread-only\n", readErr);

            var (_, inspected, _) = await server.DockerAsync("volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{index .Labels \"suite\"}} {{.Mountpoint}}", volume);
            var fields = inspected.Trim().Split(' ');
            Assert.Equal([volume, "local", "server"], fields[..3]);
            Assert.StartsWith(server.ImageStore, fields[3]);
            Assert.Equal("kept\n", await File.ReadAllTextAsync(Path.Combine(fields[3], "file")));
            var (_, listed, _) = await server.DockerAsync("volume", "ls", "--filter", "label=suite=server", "--format", "{{.Name}}");
            Assert.Equal(volume, listed.Trim());

            var user = $"vu-{Guid.NewGuid():N}"[..15];
            Assert.Equal(0, (await server.DockerAsync("create", "--name", user, "-v", $"{volume}:/data", Image, "true")).ExitCode);
            (code, _, stderr) = await server.DockerAsync("volume", "rm", volume);
            Assert.NotEqual(0, code);
            Assert.Contains("volume is in use", stderr);
            Assert.Equal(0, (await server.DockerAsync("rm", user)).ExitCode);
        }
        finally
        {
            (code, _, stderr) = await server.DockerAsync("volume", "rm", volume);
        }

        Assert.True(code == 0, stderr);
        var (missingCode, _, missing) = await server.DockerAsync("volume", "inspect", volume);
        Assert.NotEqual(0, missingCode);
        Assert.Contains("no such volume", missing);
        (code, _, stderr) = await server.DockerAsync("volume", "create", "bad/name");
        Assert.NotEqual(0, code);
        Assert.Contains("includes invalid characters", stderr);
    }
}
