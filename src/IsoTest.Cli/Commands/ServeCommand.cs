using System.CommandLine;
using IsoTest.Cli.CommandLine;
using IsoTest.Server;

namespace IsoTest.Cli.Commands;

/// <summary>
/// <c>isotest serve</c>: the built-in engine behind Docker's Engine API, so the docker CLI and every
/// Testcontainers run on it with <c>DOCKER_HOST</c>. It runs in the foreground until SIGINT/SIGTERM.
/// </summary>
internal static class ServeCommand
{
    public const string Help = """
        Serve Docker's Engine API (1.24-1.44) from IsoTest's built-in engine.
        Point a Docker client at it: export DOCKER_HOST=unix:///run/isotest/docker.sock (root) or
        unix://$XDG_RUNTIME_DIR/isotest/docker.sock (rootless). The containers belong to the server: they
        are removed when it stops, and die with it if it is killed. Images: isotest/host (the host's / behind
        a private overlay, like FromHost()), and the engine's image store (docker pull/import/load/tag/rmi; the
        one `isotest pull` fills: ISOTEST_IMAGE_STORE, else /var/lib/isotest as root, ~/.local/share/isotest).
        Networks: docker network create, and docker run --network NAME --network-alias ALIAS.
        """;

    /// <summary>The <c>serve</c> command.</summary>
    public static Command Create(CliContext context)
    {
        var hosts = DockerFlags.List("host", 'H', "list", "Daemon socket(s) to listen on: unix:///path or tcp://127.0.0.1:PORT (loopback only); repeatable", v => v);
        var group = DockerFlags.Value<string?>("group", 'G', "string", "Group for the unix socket (0660); default: owner only (0600)", v => v);
        var command = new Command("serve", Help) { hosts, group };
        command.SetAction(async (parse, _) =>
        {
            DockerApiServer server;
            var backend = context.BackendFactory();
            await using var ownBackend = backend.ConfigureAwait(false);
            try
            {
                server = await DockerApiServer.StartAsync(
                    new DockerApiServerOptions { Hosts = parse.GetValue(hosts) ?? [], Group = parse.GetValue(group), Backend = backend },
                    context.StopRequested).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or IsoTestException)
            {
                await context.Stderr.WriteLineAsync($"isotest serve: {e.Message}").ConfigureAwait(false);
                return 125;
            }

            await using (server.ConfigureAwait(false))
            {
                await context.Stdout.WriteLineAsync($"isotest serve: API listening on {string.Join(", ", server.Addresses)} (export DOCKER_HOST={server.Addresses[0]})").ConfigureAwait(false);
                await context.Stdout.FlushAsync().ConfigureAwait(false);
                try
                {
                    await Task.Delay(Timeout.Infinite, context.StopRequested).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    await context.Stderr.WriteLineAsync("isotest serve: stopping, removing its containers").ConfigureAwait(false);
                }
            }

            return 0;
        });
        return command;
    }
}
