using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace IsoTest.Engine.Native;

/// <summary>
/// The processes the engine spawns itself, as the host sees them: the agents' spawner (<see cref="AgentSpawner"/>, which forks every shim), and
/// an outbound network's slirp4netns. Spawned, reaped, and (only when one no longer answers) killed by pid.
/// </summary>
internal static unsafe class AgentProcess
{
    /// <summary>
    /// posix_spawns <paramref name="path"/> with <paramref name="fds"/> as its descriptors 0, 1, 2, ..., the given
    /// <paramref name="arguments"/> after argv[0] and no environment (the agent gets everything over its control socket).
    /// Returns its pid.
    /// </summary>
    public static int Spawn(string path, SafeFileHandle[] fds, IReadOnlyList<string>? arguments = null)
    {
        // Large enough for glibc's posix_spawn_file_actions_t (80 bytes on x86_64).
        byte* actions = stackalloc byte[256];
        Libc.posix_spawn_file_actions_init(actions);
        var refs = new bool[fds.Length];
        var pathBytes = Marshal.StringToCoTaskMemUTF8(path);
        var args = (arguments ?? []).Select(Marshal.StringToCoTaskMemUTF8).ToArray();
        var argv = stackalloc byte*[args.Length + 2];
        argv[0] = (byte*)pathBytes;
        for (int i = 0; i < args.Length; i++)
        {
            argv[i + 1] = (byte*)args[i];
        }

        argv[args.Length + 1] = null;
        var envp = stackalloc byte*[1] { null };
        try
        {
            for (int i = 0; i < fds.Length; i++)
            {
                fds[i].DangerousAddRef(ref refs[i]);
                int rc = Libc.posix_spawn_file_actions_adddup2(actions, (int)fds[i].DangerousGetHandle(), i);
                if (rc != 0)
                {
                    throw Errors.Native("posix_spawn_file_actions_adddup2", rc);
                }
            }

            int pid;
            int err = Libc.posix_spawn(&pid, (byte*)pathBytes, actions, null, argv, envp);
            if (err != 0)
            {
                throw Errors.Native($"spawning {path}", err);
            }

            return pid;
        }
        finally
        {
            Libc.posix_spawn_file_actions_destroy(actions);
            Marshal.FreeCoTaskMem(pathBytes);
            Array.ForEach(args, Marshal.FreeCoTaskMem);
            for (int i = 0; i < refs.Length; i++)
            {
                if (refs[i])
                {
                    fds[i].DangerousRelease();
                }
            }
        }
    }

    /// <summary>Reaps the shim. Called after its control socket reached EOF: it is exiting, so this cannot block for long.</summary>
    public static void Reap(int pid)
    {
        int status;
        while (Libc.waitpid(pid, &status, 0) < 0 && Libc.Errno == Libc.EINTR)
        {
        }
    }
}
