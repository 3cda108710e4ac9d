{
  description = "mpctl: multipath bidirectional layer-3 proxy (eBPF data path, TypeScript control plane)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The capabilities the portal needs (measured: contrib/systemd/mpctl@.service explains each);
      # bpffs is mounted by a mount unit, so no CAP_SYS_ADMIN.
      capabilities = [ "CAP_NET_ADMIN" "CAP_BPF" "CAP_PERFMON" ];
    in
    {
      packages = forAll (pkgs: {
        default = pkgs.buildNpmPackage {
          pname = "mpctl";
          version = "0.1.0";
          src = ./.;
          # the lock file is read directly: no npmDepsHash to keep in sync
          npmDeps = pkgs.importNpmLock { npmRoot = ./.; };
          npmConfigHook = pkgs.importNpmLock.npmConfigHook;
          nodejs = pkgs.nodejs_20;
          nativeBuildInputs = with pkgs; [ clang llvm bpftools pkg-config makeWrapper ];
          # nixpkgs' clang wrapper adds -fzero-call-used-regs and -fstack-protector, which
          # `clang -target bpf` rejects (bpf/Makefile builds with -Werror); nixpkgs' bpftune and
          # bpftop packages disable the same two
          hardeningDisable = [ "zerocallusedregs" "stackprotector" ];
          buildInputs = with pkgs; [ libbpf elfutils zlib ];
          # bpf/Makefile would dump vmlinux.h from the build machine's /sys/kernel/btf/vmlinux,
          # which the sandbox hides; take the BTF of a packaged kernel instead. The programs use
          # only UAPI structures (no CO-RE relocations), so any recent kernel's header serves.
          buildPhase = ''
            runHook preBuild
            mkdir -p build/bpf
            bpftool btf dump file ${pkgs.linuxPackages_latest.kernel.dev}/vmlinux format c > build/bpf/vmlinux.h
            make -C native
            make -C bpf BPFTOOL=${pkgs.bpftools}/bin/bpftool
            npx tsc -p tsconfig.json
            runHook postBuild
          '';
          installPhase = ''
            runHook preInstall
            mkdir -p $out/lib/mpctl $out/bin $out/share/doc/mpctl $out/lib/systemd/system
            cp -r dist build bin policy package.json node_modules $out/lib/mpctl/
            cp -r docs/. examples $out/share/doc/mpctl/
            cp contrib/systemd/run-mpctl-bpf.mount $out/lib/systemd/system/
            substitute contrib/systemd/mpctl@.service $out/lib/systemd/system/mpctl@.service \
              --replace-fail /usr/local/bin/mpctl $out/bin/mpctl
            makeWrapper ${pkgs.nodejs_20}/bin/node $out/bin/mpctl \
              --add-flags --single-threaded \
              --add-flags $out/lib/mpctl/bin/mpctl \
              --prefix PATH : ${pkgs.lib.makeBinPath [ pkgs.iproute2 pkgs.iperf3 pkgs.ethtool pkgs.util-linux ]}
            runHook postInstall
          '';
          meta = {
            description = "Bond several Internet links into one (Local/Remote Portal, eBPF)";
            license = pkgs.lib.licenses.mit;
            platforms = pkgs.lib.platforms.linux;
            mainProgram = "mpctl";
          };
        };
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [ nodejs_20 clang llvm bpftools libbpf elfutils zlib pkg-config iproute2 iperf3 ethtool gnumake util-linux ];
        };
      });

      # services.mpctl = { enable = true; role = "local"; configFile = ./lp.toml; };
      nixosModules.default = { config, lib, pkgs, ... }:
        let
          cfg = config.services.mpctl;
          mpctl = "${cfg.package}/bin/mpctl";
        in
        {
          options.services.mpctl = {
            enable = lib.mkEnableOption "the mpctl portal";
            role = lib.mkOption {
              type = lib.types.enum [ "local" "remote" ];
              description = "Local Portal (next to the client network, with the links) or Remote Portal (on the server).";
            };
            configFile = lib.mkOption {
              type = lib.types.path;
              description = ''
                The portal's TOML configuration (docs/config.md). Its private_key should name a file
                outside the Nix store, e.g. /etc/mpctl/lp.key (mode 600).
              '';
            };
            package = lib.mkOption {
              type = lib.types.package;
              default = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
              defaultText = lib.literalExpression "mpctl.packages.\${system}.default";
              description = "The mpctl package.";
            };
          };

          config = lib.mkIf cfg.enable {
            environment.systemPackages = [ cfg.package ];

            systemd.mounts = [{
              description = "bpffs for mpctl's pinned maps";
              what = "bpf";
              where = "/run/mpctl/bpf";
              type = "bpf";
              options = "mode=0700";
              unitConfig.DefaultDependencies = false;
              before = [ "local-fs.target" ];
            }];

            systemd.services.mpctl = {
              description = "mpctl ${cfg.role} portal (multipath link bonding)";
              wantedBy = [ "multi-user.target" ];
              wants = [ "network-online.target" ];
              after = [ "network-online.target" "run-mpctl-bpf.mount" ];
              requires = [ "run-mpctl-bpf.mount" ];
              serviceConfig = {
                Type = "simple";
                ExecStart = "${mpctl} up ${cfg.role} --config ${cfg.configFile} --no-tui";
                # reload: SIGUSR2, the portal exits 75 leaving its data path, and the forced
                # restart adopts it (hitless); contrib/systemd/mpctl@.service explains
                ExecReload = "${pkgs.util-linux}/bin/kill -USR2 $MAINPID";
                # a clean stop only: after a crash or a reload Restart= adopts the running data path
                ExecStopPost = "${pkgs.runtimeShell} -c 'if [ \"$$SERVICE_RESULT\" = success ] && [ \"$$EXIT_STATUS\" != 75 ]; then exec ${mpctl} down --config ${cfg.configFile}; fi'";
                SuccessExitStatus = "75";
                RestartForceExitStatus = "75";
                Restart = "on-failure";
                RestartSec = "2s";
                TimeoutStopSec = "30s";
                User = "root";
                CapabilityBoundingSet = capabilities;
                AmbientCapabilities = [ ];
                NoNewPrivileges = true;
                RuntimeDirectory = "mpctl";
                RuntimeDirectoryMode = "0700";
                RuntimeDirectoryPreserve = true;
                # metered links' usage: /var/lib/mpctl/<instance>/budget.json (state_dir)
                StateDirectory = "mpctl";
                StateDirectoryMode = "0700";
                ProtectSystem = "strict";
                ReadWritePaths = [ "/run/mpctl/bpf" ];
                ProtectHome = true;
                PrivateTmp = true;
                PrivateDevices = true;
                # not ProtectKernelTunables: up writes net.* sysctls and down restores them
                ProtectKernelModules = true;
                ProtectKernelLogs = true;
                ProtectControlGroups = true;
                ProtectClock = true;
                ProtectHostname = true;
                RestrictNamespaces = true;
                RestrictRealtime = true;
                RestrictSUIDSGID = true;
                LockPersonality = true;
                # not MemoryDenyWriteExecute: Node's JIT needs it
                RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
                SystemCallArchitectures = "native";
                UMask = "0077";
              };
            };
          };
        };
    };
}
