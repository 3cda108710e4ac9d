{
  description = "mpctl: multipath bidirectional layer-3 proxy (eBPF data path, TypeScript control plane)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
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
          nativeBuildInputs = with pkgs; [ clang llvm bpftools pkg-config ];
          buildInputs = with pkgs; [ libbpf elfutils zlib ];
          # bpf/Makefile generates vmlinux.h from the running kernel's BTF (/sys/kernel/btf/vmlinux).
          buildPhase = ''
            runHook preBuild
            make -C native
            make -C bpf BPFTOOL=${pkgs.bpftools}/bin/bpftool
            npx tsc -p tsconfig.json
            runHook postBuild
          '';
          installPhase = ''
            runHook preInstall
            mkdir -p $out/lib/mpctl $out/bin
            cp -r dist build bin package.json node_modules $out/lib/mpctl/
            makeWrapper ${pkgs.nodejs_20}/bin/node $out/bin/mpctl \
              --add-flags $out/lib/mpctl/bin/mpctl \
              --prefix PATH : ${pkgs.lib.makeBinPath [ pkgs.iproute2 pkgs.iperf3 pkgs.ethtool ]}
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
          packages = with pkgs; [ nodejs_20 clang llvm bpftools libbpf elfutils zlib pkg-config iproute2 iperf3 ethtool gnumake ];
        };
      });

      nixosModules.default = { config, lib, pkgs, ... }:
        let cfg = config.services.mpctl;
        in {
          options.services.mpctl = {
            enable = lib.mkEnableOption "mpctl portal";
            role = lib.mkOption {
              type = lib.types.enum [ "local" "remote" ];
              description = "Local Portal (next to the client network) or Remote Portal (on the server).";
            };
            configFile = lib.mkOption {
              type = lib.types.path;
              description = "mpctl TOML configuration (see the README's configuration reference).";
            };
            package = lib.mkOption {
              type = lib.types.package;
              default = self.packages.${pkgs.system}.default;
              description = "The mpctl package.";
            };
          };
          config = lib.mkIf cfg.enable {
            systemd.services.mpctl = {
              description = "mpctl ${cfg.role} portal";
              wantedBy = [ "multi-user.target" ];
              after = [ "network-online.target" ];
              wants = [ "network-online.target" ];
              serviceConfig = {
                ExecStart = "${cfg.package}/bin/mpctl up ${cfg.role} --config ${cfg.configFile} --no-tui";
                ExecStopPost = "${cfg.package}/bin/mpctl down --config ${cfg.configFile}";
                Restart = "on-failure";
                AmbientCapabilities = [ "CAP_NET_ADMIN" "CAP_BPF" "CAP_PERFMON" "CAP_SYS_ADMIN" ];
                CapabilityBoundingSet = [ "CAP_NET_ADMIN" "CAP_BPF" "CAP_PERFMON" "CAP_SYS_ADMIN" ];
                NoNewPrivileges = true;
                ProtectSystem = "strict";
                ProtectHome = true;
                PrivateTmp = true;
                RuntimeDirectory = "mpctl";
                ReadWritePaths = [ "/sys/fs/bpf" "/proc/sys/net" ];
                RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
                SystemCallArchitectures = "native";
              };
            };
          };
        };
    };
}
