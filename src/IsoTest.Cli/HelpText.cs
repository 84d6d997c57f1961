namespace IsoTest.Cli;

/// <summary>The texts of <c>isotest --help</c> and <c>isotest run --help</c>.</summary>
internal static class HelpText
{
    public const string Main = """

        Usage:  isotest COMMAND

        Isolated, capped process containers on the Linux kernel, with Docker's flags.

        Commands:
          run       Create and run a new container from the host's or a directory's root filesystem
          version   Show the isotest version

        Run 'isotest COMMAND --help' for more information on a command.

        """;

    public const string Run = """

        Usage:  isotest run [OPTIONS] ROOTFS COMMAND [ARG...]

        Create and run a new container. ROOTFS is 'host' (the host's / read-only, behind a private
        writable layer) or a directory holding a root filesystem. The container's output is streamed;
        isotest exits with the command's exit code (137 when the OOM killer ended it; 125 for isotest's
        own errors, 126 when the command cannot be invoked, 127 when it is not found, as docker run).
        Options end at ROOTFS: everything after it is the command.

        Options:
              --cpus decimal           Number of CPUs (0.5 = half of one core)
              --cpuset-cpus string     CPUs in which to allow execution (0-3, 0,1)
          -e, --env list               Set environment variables (KEY=VALUE, or KEY to copy it from here)
          -h, --hostname string        Container host name
              --help                   Print usage
          -m, --memory bytes           Memory limit (e.g. 64m; minimum 6m); swap is off, so above it the OOM killer acts
              --name string            Assign a name to the container
              --network string         host (share the host's network) or none (the default: a private network with only loopback)
              --pids-limit int         Tune container pids limit (set -1 for unlimited)
              --read-only              Mount the container's root filesystem as read only
              --rm                     Automatically remove the container when it exits (always the case for now:
                                       there is no daemon, so a container never outlives the command)
              --stop-timeout int       Seconds to wait after SIGTERM before SIGKILL when stopping (default 10)
              --tmpfs list             Mount a tmpfs directory (/run, /run:ro,size=64m)
          -u, --user string            Username or UID (format: <name|uid>[:<group|gid>])
          -v, --volume list            Bind mount a host path (/host/path:/container/path[:ro])
          -w, --workdir string         Working directory inside the container (absolute)

        Ctrl-C stops the container (SIGTERM, then SIGKILL after the stop timeout); a second Ctrl-C kills it.

        """;
}
